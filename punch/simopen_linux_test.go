//go:build linux

package punch

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// Neither side accepts (no listener; their ports drop unsolicited SYNs), so
// the only way to connect is a TCP simultaneous open: each side's SYN_SENT
// socket takes the other's SYN. Exactly one connection, same on both sides,
// reported as a simultaneous open.
func TestForcedSimultaneousOpen(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		for i := range 3 {
			// Without blackholes there is no forced simultaneous open to
			// test: skip, or under CI=true fail.
			pa, pb := testnet.RequireBlackhole(t), testnet.RequireBlackhole(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			var evA, evB eventLog
			a := newEndpoint(t, pa, withoutListener(), WithEvents(evA.add))
			b := newEndpoint(t, pb, withoutListener(), WithEvents(evB.add))
			ca, cb := mustPair(ctx, t, a, b, []netip.AddrPort{pb}, []netip.AddrPort{pa})
			cancel()
			checkSameConnection(t, ca, cb)
			for side, info := range map[string]Info{"A": ca.Info(), "B": cb.Info()} {
				if info.Method != MethodSimultaneousOpen {
					t.Errorf("%s: method %v, want simultaneous-open", side, info.Method)
				}
			}
			for side, ev := range map[string]*eventLog{"A": &evA, "B": &evB} {
				if n := ev.count(EventVerified, netip.AddrPort{}); n != 1 {
					t.Errorf("%s verified %d connections, want exactly one", side, n)
				}
			}
			converse(t, ca, cb)
			t.Logf("round %d: attempts A %v B %v in %v", i, ca.Info().Attempts, cb.Info().Attempts, ca.Info().Elapsed)
			ca.Close()
			cb.Close()
			a.Close()
			b.Close()
		}
	})
}
