//go:build linux

package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// Runs per cell of the lab matrix: -runs=N (after the package on the go test
// command line), else TCPUNCH_E2E_RUNS, else 5 (what CI runs).
var runsFlag = flag.Int("runs", 0, "runs per cell of the real-NAT matrix (default: $TCPUNCH_E2E_RUNS or 5)")

func runsPerCell(t *testing.T) int {
	t.Helper()
	if *runsFlag > 0 {
		return *runsFlag
	}
	if s := os.Getenv("TCPUNCH_E2E_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TCPUNCH_E2E_RUNS=%q: want a positive integer", s)
		}
		return n
	}
	return 5
}

// verboseArgs adds -v to listen/dial when TCPUNCH_E2E_VERBOSE is set, so a
// failing cell can be rerun with every attempt in its stderr.
func verboseArgs() []string {
	if os.Getenv("TCPUNCH_E2E_VERBOSE") != "" {
		return []string{"-v"}
	}
	return nil
}

// in is the argv prefix that runs the binary inside a node's namespace
// (this test binary links natlab, which is what makes the prefix work).
func in(n interface{ CommandPrefix() []string }) []string {
	return n.CommandPrefix()
}

// outermost is the node whose link faces the internet for h: h itself for a
// public host, otherwise its router, or that router's carrier NAT.
func outermost(h *natlab.Host) natlab.Node {
	r := h.Router()
	if r == nil {
		return h
	}
	for r.Router() != nil {
		r = r.Router()
	}
	return r
}

// publicAddr is where h's IPv4 traffic appears on the internet: the
// outermost NAT's WAN address, or h's own address for a public host.
func publicAddr(h *natlab.Host) netip.Addr {
	switch n := outermost(h).(type) {
	case *natlab.Router:
		return n.Addr()
	case *natlab.Host:
		return n.Addr()
	}
	panic("unreachable")
}

// ipv4Only disables IPv6 in h's namespace. The lab is always dual-stack and
// tcpunch offers and dials IPv6 host candidates too; IPv6 is routed without
// NAT, so in an IPv4 cell a peer could punch over IPv6 and the cell would not
// test the NAT it is named after (symmetric NAT above all).
func ipv4Only(h *natlab.Host) error {
	return h.Do(func() error {
		for _, dev := range []string{"all", "default", h.Link()} {
			p := filepath.Join("/proc/sys/net/ipv6/conf", dev, "disable_ipv6")
			if err := os.WriteFile(p, []byte("1"), 0); err != nil {
				return fmt.Errorf("disabling IPv6 in %s: %w", h.Namespace(), err)
			}
		}
		return nil
	})
}

// closeWithTest closes l when the test ends, also when it fails.
func closeWithTest(t *testing.T, l *natlab.Lab) {
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
}

// ---- the summary table ----

// cellStats are the outcomes of one cell over its runs.
type cellStats struct {
	name       string
	direct     bool      // a direct connection is expected
	bestEffort bool      // ... but not guaranteed (runs without one do not fail)
	runs       int       // runs finished (passed or failed)
	ok         int       // runs that connected, or (no path) failed cleanly
	connected  int       // runs that ended with a verified direct connection
	ms         []float64 // time to connect (the dialer's elapsed_ms), connected runs
	failMS     []float64 // wall time until the dialer gave up, no-path runs
}

var summary struct {
	sync.Mutex
	cells []*cellStats
	by    map[string]*cellStats
}

func statsFor(name string, direct, bestEffort bool) *cellStats {
	summary.Lock()
	defer summary.Unlock()
	if summary.by == nil {
		summary.by = map[string]*cellStats{}
	}
	if s := summary.by[name]; s != nil {
		return s
	}
	s := &cellStats{name: name, direct: direct, bestEffort: bestEffort}
	summary.by[name] = s
	summary.cells = append(summary.cells, s)
	return s
}

// run is one run's outcome, recorded when the run ends (also on failure).
type run struct {
	ok, connected bool
	ms, failMS    float64
}

func (s *cellStats) record(r run) {
	summary.Lock()
	defer summary.Unlock()
	s.runs++
	if r.ok {
		s.ok++
	}
	if r.connected {
		s.connected++
		s.ms = append(s.ms, r.ms)
	}
	if r.failMS > 0 {
		s.failMS = append(s.failMS, r.failMS)
	}
}

// connections is how many runs of the cell connected so far.
func (s *cellStats) connections() int {
	summary.Lock()
	defer summary.Unlock()
	return s.connected
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writeSummary prints the table of the lab matrix; nothing when no cell ran
// (the lab was skipped, or -run selected none).
func writeSummary(w io.Writer) {
	summary.Lock()
	defer summary.Unlock()
	ran := 0
	for _, c := range summary.cells {
		ran += c.runs
	}
	if ran == 0 {
		return
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(&b, "\ntcpunch real-NAT lab: time to connect is the dialer's elapsed_ms (punch start → verified)")
	fmt.Fprintln(tw, "scenario\texpect\truns\tas expected\tconnected\tmedian ms\tmax ms\tgave up after (median)\t")
	for _, c := range summary.cells {
		if c.runs == 0 {
			continue // not selected by -run
		}
		expect := "direct"
		switch {
		case !c.direct:
			expect = "no path"
		case c.bestEffort:
			expect = "best effort"
		}
		med, max, gaveUp := "-", "-", "-"
		if len(c.ms) > 0 {
			med = fmt.Sprintf("%.1f", median(c.ms))
			max = fmt.Sprintf("%.1f", slices.Max(c.ms))
		}
		if len(c.failMS) > 0 {
			if m := median(c.failMS); m < 1000 {
				gaveUp = fmt.Sprintf("%.0f ms", m) // at once: the measured classes ruled it out
			} else {
				gaveUp = fmt.Sprintf("%.1f s", m/1000)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", c.name, expect, c.runs, c.ok, c.connected, med, max, gaveUp)
	}
	tw.Flush()
	io.WriteString(w, b.String())
}

// summaryWriter is where TestMain prints the table: stdout, which `go test`
// shows with -v or when the package fails, and also the file named by
// TCPUNCH_E2E_SUMMARY, which `make test` prints after the run (in package
// list mode the go command drops a passing package's output).
func summaryWriter() (io.Writer, func()) {
	path := os.Getenv("TCPUNCH_E2E_SUMMARY")
	if path == "" {
		return os.Stdout, func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: writing the summary to %s: %v\n", path, err)
		return os.Stdout, func() {}
	}
	return io.MultiWriter(os.Stdout, f), func() { f.Close() }
}

// leftoverNamespaces lists namespaces of this process's labs still present
// after the tests (every lab must have been closed).
func leftoverNamespaces() []string {
	entries, _ := os.ReadDir("/run/netns")
	prefix := fmt.Sprintf("tpl-%d-", os.Getpid())
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// labReady reports whether this machine can run the lab (for TestMain's
// sweep); tests call natlab.Require themselves.
func labReady() bool { return natlab.Check().Err() == nil }

func sweepStaleLabs() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natlab.Sweep(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sweeping stale lab namespaces:", err)
	}
}
