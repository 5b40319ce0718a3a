//go:build linux

package punch

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWinnerBacksOffNormally: attempts resend their SYN on a fixed 1 s
// timer (TCP_RTO_MAX_MS), but the application's stream must back off as
// TCP does, up to the kernel's 120 s. Both ends are checked, as either may
// be the dialed one.
func TestWinnerBacksOffNormally(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	ca, cb := mustPair(ctx, t, a, b, []netip.AddrPort{b.Addr()}, []netip.AddrPort{a.Addr()})
	for _, c := range []*Conn{ca, cb} {
		raw, err := c.tcp.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var rtoMax int
		var gerr error
		raw.Control(func(fd uintptr) { rtoMax, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, 44) }) // TCP_RTO_MAX_MS
		if gerr != nil {
			t.Skipf("kernel lacks TCP_RTO_MAX_MS: %v", gerr)
		}
		if rtoMax != 120000 {
			t.Errorf("%v end: TCP_RTO_MAX_MS %d, want the kernel's 120000", c.Info().Method, rtoMax)
		}
	}
}
