//go:build linux

package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The Connect flood of issue 11: one source opens and closes Connects as
// fast as it can against a real `tcpunch serve` with its default limits,
// naming a real `tcpunch listen` and offering hostile candidates. The
// listener runs in a lab host of its own, so the TCP counters of its
// namespace (/proc/PID/net/snmp, ActiveOpens: one per connect(2), i.e.
// one per SYN the engine sends, the kernel's retransmissions aside) are
// its own. Its memory, descriptors and SYN rate must stay bounded, and a
// good dialer from another host must still connect.
//
// Bounded: floodFor of flooding by floodWorkers connections at a time,
// inside namespaces this test created.
func TestLabConnectFlood(t *testing.T) {
	natlab.Require(t)
	// Not parallel: the flood loads both cores for its 5 s, which the
	// timing-sensitive best-effort cells of the matrix would pay for, and
	// its own bounds (SYNs per second, the good dialer's time) are cleaner
	// on a quiet machine.
	const (
		floodFor     = 5 * time.Second
		floodWorkers = 16
		name         = "flooded"
	)
	ctx := testContext(t, 3*time.Minute)
	l, err := natlab.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeWithTest(t, l)
	var hosts [3]*natlab.Host
	for i, n := range []string{"listener", "attacker", "good"} {
		if hosts[i], err = l.AddPublicHost(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := ipv4Only(hosts[i]); err != nil {
			t.Fatal(err)
		}
	}
	lh, attacker, good := hosts[0], hosts[1], hosts[2]
	rdv := l.Rendezvous()
	rv := netip.AddrPortFrom(rdv.Addr(), rdvPort).String()
	srv := start(t, in(rdv), nil, &syncBuffer{}, "serve", "--listen", rv) // the defaults
	srv.waitReady(30 * time.Second)

	lp := start(t, in(lh), nil, &syncBuffer{}, "listen", "-r", rv, "--exec", "cat", name)
	lp.waitReady(30 * time.Second)
	pid := lp.cmd.Process.Pid

	dialOnce := func(what string) (wall, punch time.Duration) {
		t.Helper()
		var out syncBuffer
		began := time.Now()
		d := start(t, in(good), strings.NewReader("ping\n"), &out, "dial", "-r", rv, "--report", "json", "--timeout", "30s", name)
		if code := d.wait(time.Minute); code != 0 || out.String() != "ping\n" {
			t.Fatalf("%s good dialer: exit %d, got %q; stderr:\n%s\nlistener:\n%s", what, code, out.String(), d.stderr.String(), lp.stderr.String())
		}
		wall = time.Since(began)
		return wall, time.Duration(parseReport(t, d.stderr.String()).ElapsedMS * float64(time.Millisecond))
	}
	const goodRuns = 3
	var idleWall, idlePunch []time.Duration
	for range goodRuns {
		w, p := dialOnce("unloaded")
		idleWall, idlePunch = append(idleWall, w), append(idlePunch, p)
	}
	base := sampleProc(t, pid)

	// The flood, sampled every 50 ms.
	fctx, stop := context.WithTimeout(ctx, floodFor)
	defer stop()
	var samples []procSample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			samples = append(samples, sampleProc(t, pid))
			select {
			case <-fctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	hostile := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:22"),
		netip.MustParseAddrPort("169.254.169.254:80"),
		netip.MustParseAddrPort("10.99.0.1:22"),
	}
	var fl floodCounts
	var wg sync.WaitGroup
	for range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				fl.note(floodConnect(fctx, attacker, rv, name, hostile))
			}
		}()
	}
	var loadWall, loadPunch []time.Duration
	time.Sleep(time.Second) // the buckets are empty by now
	for range goodRuns {
		w, p := dialOnce("loaded")
		loadWall, loadPunch = append(loadWall, w), append(loadPunch, p)
	}
	wg.Wait()
	<-sampled
	after := sampleProc(t, pid)

	// What the listener did.
	maxRSS, maxFDs := 0, 0
	for _, s := range samples {
		maxRSS, maxFDs = max(maxRSS, s.rssKB), max(maxFDs, s.fds)
	}
	synPerSec := 0 // the most ActiveOpens in any 1 s window
	for i, s := range samples {
		for j := i; j < len(samples) && samples[j].at.Sub(s.at) <= time.Second; j++ {
			synPerSec = max(synPerSec, samples[j].activeOpens-s.activeOpens)
		}
	}
	syns := after.activeOpens - base.activeOpens
	t.Logf("flood: %d Connects in %v from one source (%d workers): %s", fl.total(), floodFor, floodWorkers, fl.String())
	t.Logf("listener: RSS %d kB before, at most %d kB during; fds %d before, at most %d; SYNs (ActiveOpens) %d during the flood, at most %d in one second",
		base.rssKB, maxRSS, base.fds, maxFDs, syns, synPerSec)
	t.Logf("good dialer, unloaded: wall %v, punch %v; loaded: wall %v, punch %v", idleWall, idlePunch, loadWall, loadPunch)

	if maxRSS >= 64<<10 {
		t.Errorf("listener RSS reached %d kB, want < 64 MB", maxRSS)
	}
	if maxFDs > 64 {
		t.Errorf("listener held %d descriptors, want at most 64", maxFDs)
	}
	// The engine's own cap is 400 SYNs a second per endpoint; the budget
	// per punch (50/s) times the punch cap (8) is the same.
	if synPerSec > 450 {
		t.Errorf("listener sent %d SYNs in one second, want at most 450", synPerSec)
	}
	if fl.code[429] == 0 {
		t.Errorf("no Connect was refused 429: the flood never met the rate limit (%s)", fl.String())
	}
	// A generous bound (timing claims live in the benchmarks): the loaded
	// punch stays within 2× the unloaded one plus 500 ms of scheduling
	// noise on a shared 2-core machine.
	if lp, ip := slices.Max(loadPunch), slices.Max(idlePunch); lp > 2*ip+500*time.Millisecond {
		t.Errorf("good dialer's punch took %v under the flood, %v without", lp, ip)
	}
	if code := srv.exitedEarly(); code >= 0 {
		t.Errorf("serve exited (%d) during the flood", code)
	}
	if code := lp.exitedEarly(); code >= 0 {
		t.Errorf("listen exited (%d) during the flood", code)
	}
}

// exitedEarly is the exit code of a process that already ended, else -1.
func (p *proc) exitedEarly() int {
	select {
	case <-p.done:
		return p.wait(0)
	default:
		return -1
	}
}

// procSample is one reading of a process's resources.
type procSample struct {
	at          time.Time
	rssKB, fds  int
	activeOpens int // the TCP ActiveOpens of its network namespace
}

func sampleProc(t *testing.T, pid int) procSample {
	s := procSample{at: time.Now()}
	dir := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(dir + "/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				s.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	if fds, err := os.ReadDir(dir + "/fd"); err == nil {
		s.fds = len(fds)
	}
	n, err := activeOpens(dir + "/net/snmp")
	if err != nil {
		t.Errorf("reading the listener's TCP counters: %v", err)
	}
	s.activeOpens = n
	return s
}

// activeOpens reads ActiveOpens from the Tcp lines of a /proc/net/snmp.
func activeOpens(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "ActiveOpens"); i > 0 && i < len(f) {
			return strconv.Atoi(f[i])
		}
	}
	return 0, fmt.Errorf("%s: no Tcp ActiveOpens", path)
}

// floodCounts are the outcomes of the flood's Connects.
type floodCounts struct {
	mu     sync.Mutex
	code   map[int]int // ERROR-CODE of an error response; 0: success (a peer info)
	noAnsw int         // the connection failed or closed before an answer
	n      atomic.Int64
}

func (f *floodCounts) note(code int) {
	f.n.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if code < 0 {
		f.noAnsw++
		return
	}
	if f.code == nil {
		f.code = map[int]int{}
	}
	f.code[code]++
}

func (f *floodCounts) total() int64 { return f.n.Load() }

func (f *floodCounts) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for _, c := range slices.Sorted(mapKeys(f.code)) {
		what := strconv.Itoa(c)
		if c == 0 {
			what = "paired"
		}
		parts = append(parts, fmt.Sprintf("%s %d", what, f.code[c]))
	}
	return strings.Join(append(parts, fmt.Sprintf("no answer %d", f.noAnsw)), ", ")
}

func mapKeys(m map[int]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// floodConnect is one Connect as a hostile dialer sends it, in raw STUN:
// it opens a connection from h, names name, offers cands, reads the
// answer and closes at once. It returns the answer's ERROR-CODE, 0 for a
// success, -1 for no answer.
func floodConnect(ctx context.Context, h *natlab.Host, rv, name string, cands []netip.AddrPort) int {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := h.Dial(dctx, "tcp", rv)
	if err != nil {
		return -1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	m := stun.New()
	m.Type = stun.NewType(stun.Method(0xC02), stun.ClassRequest) // Connect
	_, _ = rand.Read(m.TransactionID[:])
	m.WriteHeader()
	m.Add(stun.AttrType(0x7C01), []byte(name)) // NAME
	for _, a := range cands {
		xa := stun.XORMappedAddress{IP: a.Addr().AsSlice(), Port: int(a.Port())}
		if err := xa.AddToAs(m, stun.AttrType(0x7C02)); err != nil { // XOR-CANDIDATE
			return -1
		}
	}
	if _, err := c.Write(m.Raw); err != nil {
		return -1
	}
	// Read until the Connect's answer; a Ping from the server meanwhile
	// goes unanswered, as a hostile dialer's would.
	r := bufio.NewReader(c)
	for {
		resp, err := readSTUN(r)
		if err != nil {
			return -1
		}
		if resp.Type.Method != stun.Method(0xC02) {
			continue
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return 0
		}
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(resp); err != nil {
			return -1
		}
		return int(ec.Code)
	}
}

func readSTUN(r *bufio.Reader) (*stun.Message, error) {
	hdr, err := r.Peek(20)
	if err != nil {
		return nil, err
	}
	n := 20 + (int(hdr[2])<<8 | int(hdr[3]))
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	m := &stun.Message{Raw: buf}
	return m, m.Decode()
}
