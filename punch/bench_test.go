package punch

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// BenchmarkPunchLoopback measures one punch between two fresh Endpoints on
// loopback: listen, dial, hello exchange, nomination.
func BenchmarkPunchLoopback(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	attempts := 0
	for b.Loop() {
		ea := newEndpoint(b, netip.AddrPortFrom(lo4, 0))
		eb := newEndpoint(b, netip.AddrPortFrom(lo4, 0))
		ca, cb := mustPair(ctx, b, ea, eb, []netip.AddrPort{eb.Addr()}, []netip.AddrPort{ea.Addr()})
		for _, n := range ca.Info().Attempts {
			attempts += n
		}
		ca.Close()
		cb.Close()
		ea.Close()
		eb.Close()
	}
	b.ReportMetric(float64(attempts)/float64(b.N), "attempts/op")
}

// BenchmarkSimultaneousOpenLoopback measures a forced simultaneous open
// (Linux only: both ports drop unsolicited SYNs). The ports are reused every
// round, which also shows that linger-0 closes leave no TIME_WAIT behind.
func BenchmarkSimultaneousOpenLoopback(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pa, okA := testnet.Blackhole(b)
	pb, okB := testnet.Blackhole(b)
	if !okA || !okB {
		b.Skip("no blackhole on this system")
	}
	for b.Loop() {
		ea := newEndpoint(b, pa, withoutListener())
		eb := newEndpoint(b, pb, withoutListener())
		ca, cb := mustPair(ctx, b, ea, eb, []netip.AddrPort{pb}, []netip.AddrPort{pa})
		if ca.Info().Method != MethodSimultaneousOpen {
			b.Fatalf("method %v", ca.Info().Method)
		}
		ca.Close()
		cb.Close()
		ea.Close()
		eb.Close()
	}
}
