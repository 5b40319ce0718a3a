//go:build linux

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The relay through the real-NAT lab: pairs without a direct path connect
// through the rendezvous server's relay, byte-exact, within the relay
// budget plus a second; --relay always relays even where a punch would
// work; limits and a dying server end a relayed session with a reason.

const relayBudget = 2 * time.Second

type relayReport struct {
	report
	Path string `json:"path"`
}

func parseRelayReport(t *testing.T, stderr string) relayReport {
	t.Helper()
	var r relayReport
	line := reportLine(t, stderr)
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("--report line %q: %v", line, err)
	}
	return r
}

func relayCells() []struct {
	natlab.Scenario
	relay string
} {
	drop, sym := natlab.Side{NAT: natlab.NATDrop}, natlab.Side{NAT: natlab.NATSymmetric}
	cgn := natlab.Side{NAT: natlab.NATDrop, Carrier: natlab.NATSymmetric} // a home NAT behind a symmetric carrier NAT
	return []struct {
		natlab.Scenario
		relay string
	}{
		{natlab.Scenario{Name: "symmetric×drop", A: sym, B: drop}, "auto"},
		{natlab.Scenario{Name: "symmetric×symmetric", A: sym, B: sym}, "auto"},
		{natlab.Scenario{Name: "cgn-symmetric×drop", A: cgn, B: drop}, "auto"},
		{natlab.Scenario{Name: "drop×drop-always", A: drop, B: drop, Direct: true}, "always"},
	}
}

func TestLabRelay(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	n := runsPerCell(t)
	for _, c := range relayCells() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			for i := range n {
				t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) { runRelayed(t, cell{Scenario: c.Scenario}, c.relay, i) })
			}
		})
	}
}

// serveRelayIn starts `tcpunch serve` with extra flags in the lab.
func serveRelayIn(t *testing.T, p *natlab.Pair, extra ...string) (string, *proc) {
	t.Helper()
	listen := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort).String()
	s := start(t, in(p.Rendezvous()), nil, io.Discard, append([]string{"serve", "--listen", listen}, extra...)...)
	return s.waitReady(30 * time.Second), s
}

func runRelayed(t *testing.T, c cell, mode string, i int) {
	p := c.build(t)
	listener, dialer := roles(p, i)
	rv, _ := serveRelayIn(t, p)
	name := fmt.Sprintf("peer%d", i+1)
	lSeed, dSeed := byte(2*i+30), byte(2*i+31)
	args := []string{"-r", rv, "--report", "json", "--timeout=" + directTimeout.String(), "--relay", mode}
	lOut, dOut := newHashWriter(), newHashWriter()
	l := start(t, in(listener), stream(lSeed, pipeSize), lOut, append(append([]string{"listen"}, args...), name)...)
	l.waitStderr(`listening as`, 30*time.Second)
	d := start(t, in(dialer), stream(dSeed, pipeSize), dOut, append(append([]string{"dial"}, args...), name)...)
	if code := d.wait(runBudget); code != 0 {
		diagnose(t, p)
		t.Fatalf("dial exit %d; stderr:\n%s", code, d.stderr.String())
	}
	if code := l.wait(runBudget); code != 0 {
		t.Fatalf("listen exit %d; stderr:\n%s", code, l.stderr.String())
	}
	lr, dr := parseRelayReport(t, l.stderr.String()), parseRelayReport(t, d.stderr.String())
	t.Logf("%s run %d (--relay %s): path %s/%s, dialer connected in %.1f ms, listener in %.1f ms",
		c.Name, i+1, mode, dr.Path, lr.Path, dr.ElapsedMS, lr.ElapsedMS)
	if lr.Path != "relay" || dr.Path != "relay" || lr.Method != "relay" || dr.Method != "relay" {
		t.Errorf("reports: listener %+v, dialer %+v; want path and method relay", lr, dr)
	}
	// The helpers give both peers a secret: the secure link runs over the
	// relayed stream as over a punched one.
	if lr.Auth != "secret" || dr.Auth != "secret" || lr.HandshakeMS <= 0 || dr.HandshakeMS <= 0 {
		t.Errorf("reports: listener %+v, dialer %+v; want auth secret with a handshake", lr, dr)
	}
	limit := float64((relayBudget + time.Second).Milliseconds())
	if mode == "always" {
		limit = 1000
	}
	if dr.ElapsedMS > limit || lr.ElapsedMS > limit {
		t.Errorf("connected after %.1f ms (dialer) and %.1f ms (listener); want within %.0f ms", dr.ElapsedMS, lr.ElapsedMS, limit)
	}
	if got, n := lOut.sum(); got != digest(stream(dSeed, pipeSize)) {
		t.Errorf("listener received %d bytes that differ from the %d the dialer sent", n, pipeSize)
	}
	if got, n := dOut.sum(); got != digest(stream(lSeed, pipeSize)) {
		t.Errorf("dialer received %d bytes that differ from the %d the listener sent", n, pipeSize)
	}
	for who, s := range map[string]string{"listener": l.stderr.String(), "dialer": d.stderr.String()} {
		if !strings.Contains(s, "path: relay") {
			t.Errorf("%s's progress does not say the path is the relay:\n%s", who, s)
		}
		if mode == "auto" && !strings.Contains(s, "no direct connection verified within 2s") {
			t.Errorf("%s's progress does not say why it relays:\n%s", who, s)
		}
	}
}

// TestLabRelayNoPlaintext: the relay sits below the secure link. A
// capture of the rendezvous host's link during a relayed secret-mode
// session holds the relayed packets but never the payload marker; the same
// capture of an --insecure relayed session does hold it (so the check can
// fail).
func TestLabRelayNoPlaintext(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	const marker = "tcpunch-relay-marker-9c3f"
	drop := natlab.Side{NAT: natlab.NATDrop}
	for _, mode := range []string{"secret", "insecure"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := cell{Scenario: natlab.Scenario{Name: "drop×drop-always", A: drop, B: drop, Direct: true}}.build(t)
			rv, _ := serveRelayIn(t, p)
			ctx := testContext(t, 2*time.Minute)
			capt, err := p.Rendezvous().Capture(ctx)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"-r", rv, "--relay", "always", "--report", "json"}
			if mode == "insecure" {
				args = append(args, "--insecure")
			}
			payload := strings.Repeat(marker+"\n", 64)
			var lOut, dOut syncBuffer
			l := start(t, in(p.A), strings.NewReader(payload), &lOut, append(append([]string{"listen"}, args...), "marker")...)
			l.waitStderr("listening as", 30*time.Second)
			d := start(t, in(p.B), strings.NewReader(payload), &dOut, append(append([]string{"dial"}, args...), "marker")...)
			if c := d.wait(runBudget); c != 0 {
				t.Fatalf("dial exit %d:\n%s", c, d.stderr.String())
			}
			if c := l.wait(runBudget); c != 0 {
				t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
			}
			if err := capt.Stop(); err != nil {
				t.Fatal(err)
			}
			if got, gotD := lOut.String(), dOut.String(); got != payload || gotD != payload {
				t.Fatalf("received %d and %d bytes, want %d each way", len(got), len(gotD), len(payload))
			}
			for who, r := range map[string]relayReport{"listener": parseRelayReport(t, l.stderr.String()), "dialer": parseRelayReport(t, d.stderr.String())} {
				if r.Path != "relay" || r.Auth != mode {
					t.Errorf("%s's report %+v: want path relay, auth %s", who, r, mode)
				}
			}
			if capt.Truncated() || capt.Packets() < 10 {
				t.Fatalf("capture: %d packets, truncated %v", capt.Packets(), capt.Truncated())
			}
			switch seen := capt.Contains([]byte(marker)); {
			case mode == "secret" && seen:
				t.Error("the payload marker reached the relay server in clear")
			case mode == "insecure" && !seen:
				t.Error("the --insecure relayed session's marker is not in the capture: the check is blind")
			}
			t.Logf("%s: %d packets captured on the rendezvous host's %s, marker seen: %v", mode, capt.Packets(), capt.Interface(), capt.Contains([]byte(marker)))
		})
	}
}

// openStdin is a stdin that stays open (and empty) until the test ends.
func openStdin(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); r.Close() })
	return r
}

// TestLabRelayEnds: a relayed session that a limit or the server's death
// ends says so on both sides: exit 5 (the stream did not end cleanly), one
// line naming the reason.
func TestLabRelayEnds(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	cases := []struct {
		name  string
		serve []string
		kill  bool
		want  string
	}{
		{name: "byte-limit", serve: []string{"--relay-max-bytes", "524288"}, want: "limit of 524288 bytes"},
		{name: "time-limit", serve: []string{"--relay-max-duration", "3s"}, want: "time limit of 3s"},
		{name: "server-killed", kill: true, want: "relay connection lost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := cell{Scenario: natlab.Scenario{Name: "symmetric×drop", A: natlab.Side{NAT: natlab.NATSymmetric}, B: natlab.Side{NAT: natlab.NATDrop}}}.build(t)
			rv, srv := serveRelayIn(t, p, c.serve...)
			args := []string{"-r", rv, "--timeout=" + directTimeout.String()}
			var lIn, dIn io.Reader = stream(40, pipeSize), stream(41, pipeSize)
			if c.name != "byte-limit" {
				lIn, dIn = openStdin(t), openStdin(t)
			}
			l := start(t, in(p.A), lIn, io.Discard, append(append([]string{"listen"}, args...), "limited")...)
			l.waitStderr(`listening as`, 30*time.Second)
			d := start(t, in(p.B), dIn, io.Discard, append(append([]string{"dial"}, args...), "limited")...)
			d.waitStderr(`path: relay`, 30*time.Second)
			l.waitStderr(`path: relay`, 30*time.Second)
			if c.kill {
				srv.signal(syscall.SIGKILL)
			}
			for who, pr := range map[string]*proc{"dialer": d, "listener": l} {
				code := pr.wait(runBudget)
				stderr := pr.stderr.String()
				if code != 5 || !strings.Contains(lastLine(stderr), c.want) {
					t.Errorf("%s: exit %d, last line %q; want exit 5 and %q", who, code, lastLine(stderr), c.want)
				}
			}
		})
	}
}

// TestLabRelayPredicted: behind two symmetric NATs, with a server that has
// a second address (so both peers measure their mapping while connecting),
// --relay auto relays at once instead of waiting out the relay budget, and
// makes no direct attempt; 1 MiB each way arrives byte-exact. The WAN has
// a one-way delay of 50 ms between the peers (25 ms to the server), so the
// log gives the time after the peer info in round trips too.
func TestLabRelayPredicted(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	const delay = 50 * time.Millisecond // one way, peer to peer
	sym := natlab.Side{NAT: natlab.NATSymmetric}
	for i := range 3 {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
			p := cell{Scenario: natlab.Scenario{Name: "symmetric×symmetric-50ms", A: sym, B: sym, Delay: delay}}.build(t)
			rdv := p.Rendezvous()
			addAltAddrs(t, rdv)
			start(t, in(rdv), nil, nil, "serve", "--listen", fmt.Sprintf(":%d", rdvPort), "--alt-addr", altAddr4.String()).
				waitStderr(`rendezvous serving.*addr=`+regexp.QuoteMeta(altAddr4.String()), 30*time.Second)
			rv := netip.AddrPortFrom(rdv.Addr(), rdvPort).String()
			listener, dialer := roles(p, i)
			lSeed, dSeed := byte(2*i+50), byte(2*i+51)
			args := []string{"-r", rv, "--report", "json", "--timeout=" + directTimeout.String(), "--relay", "auto"}
			lOut, dOut := newHashWriter(), newHashWriter()
			l := start(t, in(listener), stream(lSeed, pipeSize), lOut, append(append([]string{"listen"}, args...), "predicted")...)
			l.waitStderr(`listening as`, 30*time.Second)
			d := start(t, in(dialer), stream(dSeed, pipeSize), dOut, append(append([]string{"dial"}, args...), "predicted")...)
			if code := d.wait(runBudget); code != 0 {
				t.Fatalf("dial exit %d; stderr:\n%s", code, d.stderr.String())
			}
			if code := l.wait(runBudget); code != 0 {
				t.Fatalf("listen exit %d; stderr:\n%s", code, l.stderr.String())
			}
			lr, dr := parseRelayReport(t, l.stderr.String()), parseRelayReport(t, d.stderr.String())
			rtt := float64((2 * delay).Milliseconds()) // peer to peer
			t.Logf("run %d: path %s/%s after the peer info: dialer %.1f ms (%.2f peer RTTs), listener %.1f ms (%.2f); attempts %d/%d",
				i+1, dr.Path, lr.Path, dr.ElapsedMS, dr.ElapsedMS/rtt, lr.ElapsedMS, lr.ElapsedMS/rtt, dr.Attempts, lr.Attempts)
			if lr.Path != "relay" || dr.Path != "relay" || lr.Attempts != 0 || dr.Attempts != 0 {
				t.Errorf("reports: listener %+v, dialer %+v; want path relay and no direct attempt", lr, dr)
			}
			// Generous: what matters is that the budget is not waited out.
			if half := float64(relayBudget.Milliseconds()) / 2; dr.ElapsedMS > half || lr.ElapsedMS > half {
				t.Errorf("relayed after %.1f ms (dialer) and %.1f ms (listener); want well under the %v budget", dr.ElapsedMS, lr.ElapsedMS, relayBudget)
			}
			for who, s := range map[string]string{"listener": l.stderr.String(), "dialer": d.stderr.String()} {
				if !strings.Contains(s, "no direct path can exist") || !strings.Contains(s, "relaying through the rendezvous server at once") {
					t.Errorf("%s's progress does not say it relays at once and why:\n%s", who, s)
				}
			}
			if got, n := lOut.sum(); got != digest(stream(dSeed, pipeSize)) {
				t.Errorf("listener received %d bytes that differ from the %d the dialer sent", n, pipeSize)
			}
			if got, n := dOut.sum(); got != digest(stream(lSeed, pipeSize)) {
				t.Errorf("dialer received %d bytes that differ from the %d the listener sent", n, pipeSize)
			}
		})
	}
}
