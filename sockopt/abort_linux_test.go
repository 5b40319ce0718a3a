//go:build linux

package sockopt_test

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpunch/tcpunch/sockopt"
)

func TestAbortOnCloseSendsRST(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := sockopt.Dialer(netip.MustParseAddrPort("127.0.0.1:0"))
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := sockopt.Control(network, address, c); err != nil {
			return err
		}
		return sockopt.AbortOnClose(network, address, c)
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := c.(*net.TCPConn).SyscallConn()
	var l *unix.Linger
	var gerr error
	raw.Control(func(fd uintptr) { l, gerr = unix.GetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER) })
	if gerr != nil || l.Onoff != 1 || l.Linger != 0 {
		t.Fatalf("SO_LINGER = %+v, %v; want on with 0 s", l, gerr)
	}

	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c.Close()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := peer.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("peer read after an abortive close = %v, want ECONNRESET (a RST, not a FIN)", err)
	}
}
