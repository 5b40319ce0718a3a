//go:build linux

package e2e_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// TestLabSelfConnectSamePort is the self-connect seen in the wild: two peers
// on ONE host, both forced onto local port 5000. Each one's candidates for
// the other are then its own endpoint (host candidate ip:5000), so a dial can
// meet itself. The guard must catch that; the pair then connects or fails
// with a clear error, and no process ever receives its own bytes.
//
// The two peers reach the rendezvous server at two of its addresses: from
// one local ip:port, two control connections to a single server address
// would share a 4-tuple.
func TestLabSelfConnectSamePort(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	for _, where := range []string{"behind-drop-nat", "public-host"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, time.Minute)
			l, err := natlab.New(ctx)
			if err != nil {
				t.Fatal(err)
			}
			closeWithTest(t, l)
			var h *natlab.Host
			if where == "public-host" {
				h, err = l.AddPublicHost(ctx, "host")
			} else {
				var r *natlab.Router
				if r, err = l.AddRouter(ctx, "nat", natlab.NATDrop); err == nil {
					h, err = l.AddPeer(ctx, "host", r)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := ipv4Only(h); err != nil {
				t.Fatal(err)
			}
			rdv := l.Rendezvous()
			second := netip.MustParseAddr("203.0.113.3") // below the lab's first handed-out host octet
			if err := rdv.AddAddr(netip.PrefixFrom(second, 24)); err != nil {
				t.Fatalf("adding %v to the rendezvous host: %v", second, err)
			}
			serve(t, in(rdv), fmt.Sprintf("0.0.0.0:%d", rdvPort))
			rv1 := netip.AddrPortFrom(rdv.Addr(), rdvPort).String()
			rv2 := netip.AddrPortFrom(second, rdvPort).String()

			const timeout = "--timeout=10s"
			lSeed, dSeed := byte(1), byte(2)
			lOut, dOut := newHashWriter(), newHashWriter()
			// --relay never: the guard is under test; through the relay the
			// two processes would reach each other, as they should.
			lp := start(t, in(h), stream(lSeed, pipeSize), lOut, "listen", "-r", rv1, "--port", "5000", "--relay", "never", "--report", "json", timeout, "self")
			lp.waitStderr(`listening as`, 30*time.Second)
			dp := start(t, in(h), stream(dSeed, pipeSize), dOut, "dial", "-r", rv2, "--port", "5000", "--relay", "never", "--report", "json", timeout, "self")
			code := dp.wait(runBudget)
			both := "listener:\n" + lp.stderr.String() + "\ndialer:\n" + dp.stderr.String()
			t.Logf("dial exit %d: %s", code, lastLine(dp.stderr.String()))

			lSum, lN := lOut.sum()
			dSum, dN := dOut.sum()
			own := map[string][32]byte{"listener": digest(stream(lSeed, pipeSize)), "dialer": digest(stream(dSeed, pipeSize))}
			if lN > 0 && lSum == own["listener"] || dN > 0 && dSum == own["dialer"] {
				t.Fatalf("a process received its own bytes: it talked to itself\n%s", both)
			}
			switch code {
			case 0:
				// Connected after all: then to the other process, with
				// the other's bytes each way.
				if c := lp.wait(runBudget); c != 0 {
					t.Fatalf("dial connected but listen exit %d\n%s", c, both)
				}
				if lSum, lN = lOut.sum(); lSum != own["dialer"] {
					t.Errorf("listener received %d bytes, not the dialer's %d", lN, pipeSize)
				}
				if dSum, dN = dOut.sum(); dSum != own["listener"] {
					t.Errorf("dialer received %d bytes, not the listener's %d", dN, pipeSize)
				}
				lr, dr := parseReport(t, lp.stderr.String()), parseReport(t, dp.stderr.String())
				if lr.Local != dr.Remote || lr.Remote != dr.Local || dr.Local == dr.Remote {
					t.Errorf("reports: listener %s<->%s, dialer %s<->%s", lr.Local, lr.Remote, dr.Local, dr.Remote)
				}
			case 3:
				if last := lastLine(dp.stderr.String()); !regexp.MustCompile(`^tcpunch: .*(no direct path|self-connect)`).MatchString(last) {
					t.Errorf("dial's error %q does not name the problem\n%s", last, both)
				}
				if lN != 0 || dN != 0 {
					t.Errorf("nothing was connected, yet the listener wrote %d and the dialer %d bytes", lN, dN)
				}
			default:
				t.Fatalf("dial exit %d, want 0 (connected to the other process) or 3 (no path)\n%s", code, both)
			}
			// The guard saw it: a candidate or connection that was us.
			if !regexp.MustCompile(`self-connect|ourselves`).MatchString(both) {
				t.Errorf("no trace of the self-connect guard on either stderr:\n%s", both)
			}
		})
	}
}
