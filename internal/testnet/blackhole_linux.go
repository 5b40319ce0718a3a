//go:build linux

package testnet

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var lo4 = netip.MustParseAddr("127.0.0.1")

// Blackhole returns a loopback address whose SYNs are silently dropped, as a
// NAT that has not yet seen our outgoing SYN would: a listener with a backlog
// of zero whose accept queue is already full. Dialing from its port (the
// listener shares it with SO_REUSEPORT) is still possible, and a SYN that
// matches a socket in SYN_SENT on that port reaches that socket.
func Blackhole(t testing.TB) (netip.AddrPort, bool) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for _, opt := range []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(lo4, uint16(sa.(*unix.SockaddrInet4).Port))
	fill, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fill.Close() })
	// The queue is full once a further SYN goes unanswered.
	for i := 0; ; i++ {
		probe, err := net.DialTimeout("tcp", addr.String(), 100*time.Millisecond)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return addr, true
			}
			t.Fatalf("probing blackhole: %v", err)
		}
		probe.Close()
		if i == 20 {
			t.Log("cannot build a blackhole on this kernel")
			return addr, false
		}
	}
}
