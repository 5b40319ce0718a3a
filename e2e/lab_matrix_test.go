//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The real-NAT matrix: every cell is a topology of the lab; every run builds
// it afresh, starts `tcpunch serve` on the rendezvous host, `tcpunch listen`
// in one peer's namespace and `tcpunch dial` in the other's, and pipes 1 MiB
// of random data each way. Runs alternate which peer listens.

const (
	pipeSize = 1 << 20
	// directTimeout is the --timeout of listen and dial in cells that must
	// connect: generous, the lab's timing is not what is tested here.
	directTimeout = 60 * time.Second
	// noPathTimeout is the --timeout of dial in cells that must fail: the
	// run waits that long for nothing.
	noPathTimeout = 5 * time.Second
	// runBudget bounds each process of a run: a failure must fail, not hang.
	runBudget = 3 * time.Minute
	rdvPort   = 3478
)

// cell is a scenario of the matrix, with asymmetric link delays when set
// (natlab.Scenario only splits one delay evenly).
type cell struct {
	natlab.Scenario
	delayA, delayB time.Duration // one-way delay of a's and b's internet-facing links
	// bestEffort, when set, says why a direct connection is possible but
	// not guaranteed: runs that do not connect are counted and logged, not
	// failed, as long as the cell connects in at least bestEffortMin of its
	// runs. A connection that is made is checked like any other.
	bestEffort string
}

// bestEffortMin is how many of n runs of a best-effort cell must connect:
// at least one. Before the 10 ms refusal floor and the SYN budget (issue
// 11) these cells connected 9-10/10 and 20/20 alone and 5/5 in the matrix;
// since, the RST-answering cells without delay connect in only part of the
// runs when both cores are busy (CI: rst×rst 4/5, rst×rst-ipv6 2/5 and 3/5,
// open×open 5/5; alone, rst×rst 17/20). None connecting in five runs means
// the cell is broken; fewer is the trade-off BENCHMARKS.md section 1
// records, to be won back.
const bestEffortMin = 1

// bestEffortTimeout is the --timeout of best-effort cells: what a patient
// user would wait, and it bounds the suite. Since the 10 ms refusal floor
// the RST-answering cells without delay connect in a median 3–6 s, with a
// tail past 20 s when both cores are busy (CI: rst×rst-ipv6 2 of 5 within
// 20 s); 45 s keeps that tail inside the run.
const bestEffortTimeout = 45 * time.Second

// answersRST: unsolicited SYNs to this side get a RST, from the NAT's
// firewall or its own stack, which also deletes the sender's fresh mapping.
func answersRST(s natlab.Side) bool { return s.NAT == natlab.NATReject || s.NAT == natlab.NATOpen }

func matrix() []cell {
	var cells []cell
	for _, s := range natlab.Scenarios() {
		c := cell{Scenario: s}
		if s.Direct && !s.SameNAT && s.Delay == 0 && answersRST(s.A) && answersRST(s.B) {
			// Both NATs answer the first SYN that arrives with a RST
			// and so delete the mapping the other side just opened:
			// the punch only succeeds if both SYNs are in flight at
			// once, a window of one one-way delay, some 50 µs on the
			// lab's zero-delay links (docs/ARCHITECTURE.md). With 50 ms of
			// delay the same NATs are in the strict part (rst×rst-50ms).
			c.bestEffort = "both NATs answer SYNs with RST and the links have no delay: both SYNs must cross within ~50 µs"
		}
		cells = append(cells, c)
	}
	drop, rst := natlab.Side{NAT: natlab.NATDrop}, natlab.Side{NAT: natlab.NATReject}
	return append(cells,
		cell{Scenario: natlab.Scenario{Name: "drop×rst-50ms", A: drop, B: rst, Delay: 50 * time.Millisecond, Direct: true}},
		cell{Scenario: natlab.Scenario{Name: "drop×drop-150ms×10ms", A: drop, B: drop, Direct: true},
			delayA: 150 * time.Millisecond, delayB: 10 * time.Millisecond},
	)
}

// build makes the cell's lab, closed at the end of the test.
func (c cell) build(t *testing.T) *natlab.Pair {
	t.Helper()
	ctx := testContext(t, time.Minute)
	start := time.Now()
	p, err := c.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeWithTest(t, p.Lab)
	if c.delayA > 0 || c.delayB > 0 {
		if err := p.SetDelay(outermost(p.A), c.delayA); err != nil {
			t.Fatal(err)
		}
		if err := p.SetDelay(outermost(p.B), c.delayB); err != nil {
			t.Fatal(err)
		}
	}
	if !c.IPv6 {
		for _, h := range []*natlab.Host{p.A, p.B} {
			if err := ipv4Only(h); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("lab %s up in %v", p.Prefix(), time.Since(start).Round(time.Millisecond))
	return p
}

func TestLabMatrix(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	n := runsPerCell(t)
	for _, c := range matrix() {
		st := statsFor(c.Name, c.Direct, c.bestEffort != "")
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			before := st.connections()
			for i := range n {
				t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
					if c.Direct {
						runDirect(t, c, i, st)
					} else {
						runNoPath(t, c, i, st)
					}
				})
			}
			if got, want := st.connections()-before, bestEffortMin; c.bestEffort != "" && got < want {
				t.Errorf("best effort, but connected in %d of %d runs, want at least %d (%s)", got, n, want, c.bestEffort)
			}
		})
	}
}

// roles: even runs a listens and b dials, odd runs the other way round.
func roles(p *natlab.Pair, i int) (listener, dialer *natlab.Host) {
	if i%2 == 0 {
		return p.A, p.B
	}
	return p.B, p.A
}

// serveIn starts `tcpunch serve` on the rendezvous host, with a second
// address of the cell's family (--alt-addr) so that listen and dial
// measure their NAT classes, and returns the address peers use.
func serveIn(t *testing.T, p *natlab.Pair) string {
	t.Helper()
	rdv := p.Rendezvous()
	addAltAddrs(t, rdv)
	alt := altAddr4
	if p.Scenario.IPv6 {
		alt = altAddr6
	}
	listen := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort).String()
	addr, _ := serve(t, in(rdv), listen, "--alt-addr", alt.String())
	return addr
}

// symmetric: the side's NAT gives every destination its own port.
func symmetric(s natlab.Side) bool {
	return s.NAT == natlab.NATSymmetric || s.NAT == natlab.NATSymmetricRandom
}

func runDirect(t *testing.T, c cell, i int, st *cellStats) {
	var r run
	defer func() { r.ok = r.connected && !t.Failed(); st.record(r) }()

	p := c.build(t)
	listener, dialer := roles(p, i)
	rv := serveIn(t, p)
	name := fmt.Sprintf("peer%d", i+1)
	lSeed, dSeed := byte(2*i+10), byte(2*i+11)
	// --relay never: the matrix measures punching (lab_relay_test.go
	// tests the fallback).
	timeout := "--timeout=" + directTimeout.String()
	if c.bestEffort != "" {
		timeout = "--timeout=" + bestEffortTimeout.String()
	}

	lOut, dOut := newHashWriter(), newHashWriter()
	l := start(t, in(listener), stream(lSeed, pipeSize), lOut,
		append(append([]string{"listen", "-r", rv, "--report", "json", "--relay", "never", timeout}, verboseArgs()...), name)...)
	l.waitStderr(`listening as`, 30*time.Second)
	caps := wanCaptures(t, p)
	d := start(t, in(dialer), stream(dSeed, pipeSize), dOut,
		append(append([]string{"dial", "-r", rv, "--report", "json", "--relay", "never", timeout}, verboseArgs()...), name)...)
	var stuck atomic.Pointer[string]
	if c.bestEffort == "" {
		ctx := testContext(t, runBudget)
		taken := make(chan struct{})
		snap := time.AfterFunc(stuckAfter, func() {
			defer close(taken)
			s := diagnosis(ctx, p)
			stuck.Store(&s)
		})
		defer func() { // before the lab closes (a cleanup)
			if !snap.Stop() {
				<-taken
			}
		}()
	}

	code := d.wait(runBudget)
	if code == 3 && c.bestEffort != "" {
		t.Logf("%s run %d: best effort (%s): no connection: %s", c.Name, i+1, c.bestEffort, lastLine(d.stderr.String()))
		return
	}
	if code != 0 {
		if s := stuck.Load(); s != nil {
			t.Logf("after %v, while both peers still punched:\n%s", stuckAfter, *s)
		}
		saveCaptures(t, p, caps)
		diagnose(t, p)
		t.Fatalf("%s: dial in %s exit %d; stderr:\n%s", c.Name, dialer.Name(), code, d.stderr.String())
	}
	if code := l.wait(runBudget); code != 0 {
		t.Fatalf("%s: listen in %s exit %d; stderr:\n%s", c.Name, listener.Name(), code, l.stderr.String())
	}
	lr, dr := parseReport(t, l.stderr.String()), parseReport(t, d.stderr.String())
	r.connected, r.ms = true, dr.ElapsedMS
	t.Logf("%s run %d: %s listened, %s dialed: %s %s→%s in %.1f ms (listener: %s in %.1f ms)",
		c.Name, i+1, listener.Name(), dialer.Name(), dr.Method, dr.Local, dr.Remote, dr.ElapsedMS, lr.Method, lr.ElapsedMS)

	if got, n := lOut.sum(); got != digest(stream(dSeed, pipeSize)) {
		t.Errorf("listener received %d bytes that differ from the %d the dialer sent", n, pipeSize)
	}
	if got, n := dOut.sum(); got != digest(stream(lSeed, pipeSize)) {
		t.Errorf("dialer received %d bytes that differ from the %d the listener sent", n, pipeSize)
	}
	checkReport(t, p, "listener", lr, dialer, dr)
	checkReport(t, p, "dialer", dr, listener, lr)
	checkMethods(t, lr.Method, dr.Method)
	// The listener's public endpoint as the rendezvous saw it: a dialer
	// that reached the listener through its NAT must have used exactly it
	// (the NAT maps the reused port the same way for every destination).
	if m := regexp.MustCompile(`public endpoint (\S+)`).FindStringSubmatch(l.stderr.String()); m != nil {
		if remote := mustAddrPort(t, dr.Remote); listener.Router() != nil && remote.Addr() == publicAddr(listener) {
			if obs, err := netip.ParseAddrPort(m[1]); err == nil && unmapped(obs) != remote {
				t.Errorf("dialer connected to %v, but the rendezvous saw the listener at %v", remote, obs)
			}
		}
	}
}

// runNoPath: no direct path exists; dial must give up within its timeout
// with exit 3 and one line on stderr naming the problem, and nothing may
// have been connected. Where both NATs are symmetric the measured classes
// rule a direct path out (the server has --alt-addr): dial must say so and
// give up at once, well before its --timeout.
func runNoPath(t *testing.T, c cell, i int, st *cellStats) {
	var r run
	defer func() { r.ok = !r.connected && !t.Failed(); st.record(r) }()

	p := c.build(t)
	listener, dialer := roles(p, i)
	rv := serveIn(t, p)
	name := fmt.Sprintf("peer%d", i+1)
	// No relay: what is tested is that no direct path is reported as such
	// (lab_relay_test.go relays the same cells).
	timeout := "--timeout=" + noPathTimeout.String()

	lOut, dOut := newHashWriter(), newHashWriter()
	l := start(t, in(listener), stream(byte(2*i+10), pipeSize), lOut, "listen", "-r", rv, "--report", "json", "--relay", "never", timeout, name)
	l.waitStderr(`listening as`, 30*time.Second)
	began := time.Now()
	d := start(t, in(dialer), stream(byte(2*i+11), pipeSize), dOut, "dial", "-r", rv, "--report", "json", "--relay", "never", timeout, name)
	// "Within its timeout": the punch deadline covers the rendezvous too;
	// the slack is for process start and exit on a loaded machine.
	code := d.wait(noPathTimeout + 20*time.Second)
	r.failMS = float64(time.Since(began).Microseconds()) / 1000
	stderr := d.stderr.String()
	if code == 0 {
		r.connected = true
		t.Fatalf("%s: dial connected, but no direct path should exist; stderr:\n%s", c.Name, stderr)
	}
	if code != 3 {
		t.Fatalf("%s: dial exit %d, want 3 (no direct path); stderr:\n%s", c.Name, code, stderr)
	}
	t.Logf("%s run %d: %s dialed %s, gave up after %.1f s: %s", c.Name, i+1, dialer.Name(), listener.Name(), r.failMS/1000, lastLine(stderr))
	checkOneLineError(t, stderr, "no direct path")
	if symmetric(c.A) && symmetric(c.B) {
		// What waiting out --timeout takes at the least; giving up at
		// once takes a process start and two round trips.
		if took := time.Duration(r.failMS * float64(time.Millisecond)); took >= noPathTimeout {
			t.Errorf("%s: dial gave up after %v, not at once (--timeout %v): the measured classes should rule a direct path out", c.Name, took, noPathTimeout)
		}
		if !strings.Contains(lastLine(stderr), "can exist") || !strings.Contains(lastLine(stderr), "gave up at once") {
			t.Errorf("%s: the error does not say that no direct path can exist between the measured NATs: %s", c.Name, lastLine(stderr))
		}
	}
	if strings.Contains(l.stderr.String(), "connected to") || strings.Contains(stderr, "connected to") {
		t.Errorf("a side claims a connection:\nlistener:\n%s\ndialer:\n%s", l.stderr.String(), stderr)
	}
	if _, n := lOut.sum(); n != 0 {
		t.Errorf("listener wrote %d bytes, but nothing was connected", n)
	}
	if _, n := dOut.sum(); n != 0 {
		t.Errorf("dialer wrote %d bytes, but nothing was connected", n)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// checkOneLineError checks that stderr ends with the error, one line that
// names the problem (want), and that no other line does.
func checkOneLineError(t *testing.T, stderr, want string) {
	t.Helper()
	last := lastLine(stderr)
	if !strings.HasPrefix(last, "tcpunch: ") || !strings.Contains(last, want) {
		t.Errorf("last line of stderr %q: want `tcpunch: ...%s...`; stderr:\n%s", last, want, stderr)
	}
	if n := strings.Count(stderr, want); n != 1 {
		t.Errorf("%q appears on %d lines of stderr, want one:\n%s", want, n, stderr)
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("report address %q: %v", s, err)
	}
	return unmapped(a)
}

func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// checkReport checks one side's --report line: the remote is the peer's
// public endpoint or one of its own (LAN/host) addresses in the cell's
// family, never the rendezvous; an untranslated remote is exactly the
// peer's local socket.
func checkReport(t *testing.T, p *natlab.Pair, who string, r report, peer *natlab.Host, peerReport report) {
	t.Helper()
	remote := mustAddrPort(t, r.Remote)
	rdv := p.Rendezvous()
	if remote.Addr() == rdv.Addr() || remote.Addr() == rdv.Addr6() {
		t.Errorf("%s's remote %v is the rendezvous host", who, remote)
	}
	var allowed []netip.Addr
	if p.Scenario.IPv6 {
		allowed = []netip.Addr{peer.Addr6()}
	} else {
		allowed = []netip.Addr{peer.Addr(), publicAddr(peer)}
	}
	ok := false
	for _, a := range allowed {
		ok = ok || remote.Addr() == a
	}
	if !ok {
		t.Errorf("%s's remote %v is none of the peer %s's endpoints %v", who, remote, peer.Name(), allowed)
	}
	if remote.Addr() == peer.Addr() || remote.Addr() == peer.Addr6() {
		if pl := mustAddrPort(t, peerReport.Local); pl.Port() != remote.Port() {
			t.Errorf("%s's remote %v is the peer's own address, but the peer's socket is %v", who, remote, pl)
		}
	}
	switch r.Method {
	case "simultaneous-open", "accept", "connect":
	default:
		t.Errorf("%s's report method %q", who, r.Method)
	}
	if r.ElapsedMS <= 0 || r.SelfConnects != 0 {
		t.Errorf("%s's report %+v: want elapsed > 0 and no self-connects", who, r)
	}
}

// checkMethods: both ends describe the same connection.
func checkMethods(t *testing.T, listener, dialer string) {
	t.Helper()
	want := map[string]string{"simultaneous-open": "simultaneous-open", "accept": "connect", "connect": "accept"}
	if want[listener] != dialer {
		t.Errorf("methods disagree: listener %q, dialer %q", listener, dialer)
	}
}

// diagnose logs the routers' conntrack tables (over netlink) and, where ss
// is installed, the peers' TCP sockets, taken right when a run failed,
// while its listener still runs.
func diagnose(t *testing.T, p *natlab.Pair) {
	t.Helper()
	t.Log(diagnosis(testContext(t, 10*time.Second), p))
}

// diagnosis is what diagnose logs, as text.
func diagnosis(ctx context.Context, p *natlab.Pair) string {
	var b strings.Builder
	_, ssErr := exec.LookPath("ss")
	var routers []*natlab.Router
	for _, h := range []*natlab.Host{p.A, p.B} {
		if ssErr == nil {
			out, err := h.Command(ctx, "ss", "-tano", "state", "all").CombinedOutput()
			fmt.Fprintf(&b, "%s: ss -tano state all (err %v):\n%s\n", h.Name(), err, out)
		}
		for r := h.Router(); r != nil; r = r.Router() {
			if !slices.Contains(routers, r) { // a shared NAT once
				routers = append(routers, r)
			}
		}
	}
	for _, r := range routers {
		flows, err := r.Conntrack()
		fmt.Fprintf(&b, "%s: conntrack, TCP (err %v):\n", r.Name(), err)
		for _, f := range flows {
			if f.Proto == "tcp" {
				fmt.Fprintf(&b, "  %v\n", f)
			}
		}
	}
	return b.String()
}

// stuckAfter is when a run of a cell that must connect has taken far
// longer than it should (they connect in milliseconds to a few seconds):
// the peers' sockets and the NATs' conntrack entries are taken then, while
// both processes still hold their attempts, and logged if the run fails.
// Taken after the dialer gave up, they would miss its sockets.
const stuckAfter = 10 * time.Second

// wanCaptures records the headers (snaplen 128) of every packet on both
// peers' internet-facing links during a run, so that a run that fails can
// leave the packet sequence behind: see saveCaptures. A run of the matrix
// is a few thousand packets, so this is cheap enough to do every time.
func wanCaptures(t *testing.T, p *natlab.Pair) []*natlab.Capture {
	t.Helper()
	ctx := testContext(t, runBudget+time.Minute)
	var caps []*natlab.Capture
	for _, h := range []*natlab.Host{p.A, p.B} {
		capturer, ok := outermost(h).(interface {
			Capture(context.Context, ...natlab.CaptureOption) (*natlab.Capture, error)
		})
		if !ok {
			t.Fatalf("%s: cannot capture %T", h.Name(), outermost(h))
		}
		c, err := capturer.Capture(ctx, natlab.WithSnaplen(128), natlab.WithCaptureDuration(runBudget+time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop() })
		caps = append(caps, c)
	}
	return caps
}

// saveCaptures writes the captures of a failed run as pcap files to
// $TCPUNCH_E2E_ARTIFACTS (point it at a directory CI keeps), else to a directory
// under the system's temporary one that outlives the test, and logs where.
func saveCaptures(t *testing.T, p *natlab.Pair, caps []*natlab.Capture) {
	t.Helper()
	dir := os.Getenv("TCPUNCH_E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tcpunch-e2e-pcaps")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("saving the captures: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", "×", "x").Replace(t.Name())
	for i, h := range []*natlab.Host{p.A, p.B} {
		caps[i].Stop()
		f := filepath.Join(dir, fmt.Sprintf("%s-%s-wan.pcap", name, h.Name()))
		if err := caps[i].WriteFile(f); err != nil {
			t.Logf("saving the captures: %v", err)
			continue
		}
		t.Logf("capture of %s's internet-facing link (%d packets): %s", h.Name(), caps[i].Packets(), f)
	}
}
