//go:build linux

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The upgrade in the real-NAT lab: a drop×drop pair whose direct SYNs a
// firewall rule drops relays; mid-transfer the rule is lifted, and the
// stream moves to a direct connection below the secure link, byte-exact
// both ways, with the report saying relay → direct.

type upgradeLine struct {
	Path            string  `json:"path"`
	UpgradedFrom    string  `json:"upgraded_from"`
	UpgradedAfterMS float64 `json:"upgraded_after_ms"`
}

// upgradeReportOf finds the --report json line of the move, if there was one.
func upgradeReportOf(stderr string) (upgradeLine, bool) {
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.Contains(l, `"upgraded_from"`) {
			continue
		}
		var u upgradeLine
		if json.Unmarshal([]byte(l), &u) == nil {
			return u, true
		}
	}
	return upgradeLine{}, false
}

// pacedReader lets through at most rate bytes per second, so that a
// transfer is still running when the test changes the path.
type pacedReader struct {
	r     io.Reader
	rate  float64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if due := time.Duration(float64(p.n) / p.rate * float64(time.Second)); due > time.Since(p.start) {
		time.Sleep(due - time.Since(p.start))
	}
	n, err := p.r.Read(b[:min(len(b), 64<<10)])
	p.n += int64(n)
	return n, err
}

// gapWriter records when each write of the received stream came.
type gapWriter struct {
	w     io.Writer
	mu    sync.Mutex
	times []time.Time
}

func (g *gapWriter) Write(b []byte) (int, error) {
	g.mu.Lock()
	g.times = append(g.times, time.Now())
	g.mu.Unlock()
	return g.w.Write(b)
}

// maxGap is the longest pause between writes that ends in [from, to], and
// the longest pause over the whole stream.
func (g *gapWriter) maxGap(from, to time.Time) (near, overall time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := 1; i < len(g.times); i++ {
		d := g.times[i].Sub(g.times[i-1])
		overall = max(overall, d)
		if !g.times[i].Before(from) && !g.times[i].After(to) {
			near = max(near, d)
		}
	}
	return near, overall
}

func TestLabRelayUpgrade(t *testing.T) {
	natlab.Require(t)
	// Not parallel: ten transfers of 256 MiB each way through the lab
	// load both cores, and the timing-sensitive best-effort cells of the
	// matrix (rst×rst without delay) would pay for it. Go runs the
	// parallel tests after this one.
	runs := 10
	if s := os.Getenv("TCPUNCH_E2E_UPGRADE_RUNS"); s != "" {
		if _, err := fmt.Sscan(s, &runs); err != nil || runs < 1 {
			t.Fatalf("TCPUNCH_E2E_UPGRADE_RUNS=%q: want a positive count", s)
		}
	}
	ok := 0
	for i := range runs {
		if t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) { runUpgrade(t, i) }) {
			ok++
		}
	}
	t.Logf("upgrade: %d/%d runs moved to direct byte-exact", ok, runs)
}

func runUpgrade(t *testing.T, i int) {
	size := int64(256 << 20)
	if os.Getenv("TCPUNCH_E2E_BIG") == "1" {
		size = 1 << 30
	}
	const rate = 48 << 20 // bytes per second each way: the transfer outlasts the move
	drop := natlab.Side{NAT: natlab.NATDrop}
	p := cell{Scenario: natlab.Scenario{Name: "drop×drop-blocked", A: drop, B: drop, Direct: true}}.build(t)
	// A's router drops what it would forward to B's public address: the
	// peers' SYNs to each other die there (B's never find A's NAT open),
	// while both reach the rendezvous server.
	unblock, err := p.A.Router().BlockTo(p.B.Router().Addr())
	if err != nil {
		t.Fatal(err)
	}
	listener, dialer := roles(p, i)
	rv, _ := serveRelayIn(t, p)
	name := fmt.Sprintf("peer%d", i+1)
	lSeed, dSeed := byte(2*i+60), byte(2*i+61)
	args := []string{"-r", rv, "--report", "json", "--timeout=" + directTimeout.String(), "--relay", "auto"}
	lOut, dOut := newHashWriter(), newHashWriter()
	lGap, dGap := &gapWriter{w: lOut}, &gapWriter{w: dOut}
	l := start(t, in(listener), &pacedReader{r: stream(lSeed, size), rate: rate}, lGap, append(append([]string{"listen"}, args...), name)...)
	l.waitStderr(`listening as`, 30*time.Second)
	d := start(t, in(dialer), &pacedReader{r: stream(dSeed, size), rate: rate}, dGap, append(append([]string{"dial"}, args...), name)...)
	d.waitStderr(`path: relay`, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	lifted := time.Now()
	if err := unblock(); err != nil {
		t.Fatal(err)
	}
	var movedL, movedD time.Time
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && (movedL.IsZero() || movedD.IsZero()); time.Sleep(5 * time.Millisecond) {
		if _, ok := upgradeReportOf(l.stderr.String()); ok && movedL.IsZero() {
			movedL = time.Now()
		}
		if _, ok := upgradeReportOf(d.stderr.String()); ok && movedD.IsZero() {
			movedD = time.Now()
		}
	}
	budget := time.Duration(size/rate)*time.Second + 2*time.Minute
	if movedL.IsZero() || movedD.IsZero() {
		t.Errorf("no upgrade within 60 s of lifting the rule")
	}
	if code := d.wait(budget); code != 0 {
		t.Fatalf("dial exit %d; stderr:\n%s", code, d.stderr.String())
	}
	if code := l.wait(budget); code != 0 {
		t.Fatalf("listen exit %d; stderr:\n%s", code, l.stderr.String())
	}
	lr, dr := parseRelayReport(t, l.stderr.String()), parseRelayReport(t, d.stderr.String())
	if lr.Path != "relay" || dr.Path != "relay" {
		t.Errorf("first reports: listener %+v, dialer %+v; want path relay", lr, dr)
	}
	lu, lok := upgradeReportOf(l.stderr.String())
	du, dok := upgradeReportOf(d.stderr.String())
	if !lok || !dok || lu.Path != "direct" || du.Path != "direct" || lu.UpgradedFrom != "relay" || du.UpgradedFrom != "relay" {
		t.Errorf("no relay → direct report on both sides:\nlistener:\n%s\ndialer:\n%s", l.stderr.String(), d.stderr.String())
	}
	if got, n := lOut.sum(); got != digest(stream(dSeed, size)) {
		t.Errorf("listener received %d bytes that differ from the %d the dialer sent", n, size)
	}
	if got, n := dOut.sum(); got != digest(stream(lSeed, size)) {
		t.Errorf("dialer received %d bytes that differ from the %d the listener sent", n, size)
	}
	// The move happened shortly before the test saw its report line (it
	// polls every 5 ms): the pause the application saw during the move
	// ends in the 300 ms before that.
	lNear, lAll := lGap.maxGap(movedL.Add(-300*time.Millisecond), movedL)
	dNear, dAll := dGap.maxGap(movedD.Add(-300*time.Millisecond), movedD)
	t.Logf("run %d: lifted → moved: listener %v, dialer %v (upgraded after %.0f/%.0f ms relayed); longest pause in the received stream around the move: listener %v, dialer %v (over the whole transfer: %v, %v)",
		i+1, movedL.Sub(lifted).Round(time.Millisecond), movedD.Sub(lifted).Round(time.Millisecond), lu.UpgradedAfterMS, du.UpgradedAfterMS,
		lNear.Round(10*time.Microsecond), dNear.Round(10*time.Microsecond), lAll.Round(10*time.Microsecond), dAll.Round(10*time.Microsecond))
}
