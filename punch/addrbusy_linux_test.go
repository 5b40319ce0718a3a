//go:build linux

package punch

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/tcpunch/tcpunch/sockopt"
)

// A dial whose 4-tuple an accepted connection already owns fails with
// EADDRNOTAVAIL, which the dial loop must recognise.
func TestAddrBusyRecognised(t *testing.T) {
	ln, err := sockopt.ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr).AddrPort()
	peer, err := sockopt.ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.Addr().(*net.TCPAddr).AddrPort()
	// The peer dials us from its listening port; we accept.
	in, err := sockopt.Dialer(peerAddr).Dial("tcp", local.String())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	acc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	// Our leftover dial to the same peer endpoint collides.
	c, err := sockopt.Dialer(local).Dial("tcp", netip.AddrPortFrom(lo4, peerAddr.Port()).String())
	if err == nil {
		c.Close()
		t.Fatal("a second connection with the same 4-tuple was made")
	}
	if !isAddrBusy(err) {
		t.Fatalf("isAddrBusy(%v) = false", err)
	}
}
