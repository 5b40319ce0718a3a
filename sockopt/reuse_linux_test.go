//go:build linux

package sockopt_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpunch/tcpunch/sockopt"
)

// readReuse returns SO_REUSEADDR and SO_REUSEPORT as the kernel reports them.
func readReuse(t *testing.T, c syscall.Conn) (addr, port int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errA, errP error
	if err := raw.Control(func(fd uintptr) {
		addr, errA = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR)
		port, errP = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT)
	}); err != nil {
		t.Fatal(err)
	}
	if errA != nil || errP != nil {
		t.Fatalf("getsockopt: %v, %v", errA, errP)
	}
	return addr, port
}

func TestListenerAndDialerShareOnePort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The far end: an ordinary listener.
	far, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()

	ln, err := sockopt.ListenConfig().Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr).AddrPort()

	if a, p := readReuse(t, ln.(*net.TCPListener)); a != 1 || p != 1 {
		t.Errorf("listener: SO_REUSEADDR=%d SO_REUSEPORT=%d, want 1 and 1", a, p)
	}

	c, err := sockopt.Dialer(local).DialContext(ctx, "tcp", far.Addr().String())
	if err != nil {
		t.Fatalf("dial from the listener's port %v: %v", local, err)
	}
	defer c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).AddrPort(); got != local {
		t.Errorf("dialed from %v, want the listener's %v", got, local)
	}
	if a, p := readReuse(t, c.(*net.TCPConn)); a != 1 || p != 1 {
		t.Errorf("dialed conn: SO_REUSEADDR=%d SO_REUSEPORT=%d, want 1 and 1", a, p)
	}

	// A second outgoing connection from the same port to another destination.
	far2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer far2.Close()
	c2, err := sockopt.Dialer(local).DialContext(ctx, "tcp", far2.Addr().String())
	if err != nil {
		t.Fatalf("second dial from %v: %v", local, err)
	}
	c2.Close()

	// The listener still accepts on the shared port.
	in, err := net.Dial("tcp", local.String())
	if err != nil {
		t.Fatalf("dial the shared listener: %v", err)
	}
	defer in.Close()
	acc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	acc.Close()
}

func TestPlainListenerBlocksReuse(t *testing.T) {
	// Without the options, the kernel refuses a second bind: the positive
	// test above is not passing by accident.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr).AddrPort()
	_, err = sockopt.ListenConfig().Listen(context.Background(), "tcp", local.String())
	if err == nil {
		t.Fatal("a reusable listener bound a port held by a plain listener")
	}
}

func TestRTT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write(buf)
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	for range 3 {
		c.Write(buf)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	rtt, err := sockopt.RTT(c.(*net.TCPConn))
	if err != nil {
		t.Fatal(err)
	}
	if rtt <= 0 || rtt > time.Second {
		t.Errorf("loopback RTT = %v, want a small positive duration", rtt)
	}
}
