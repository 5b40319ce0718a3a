package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// benchSTUN: STUN Binding requests over TCP per second and their latency,
// against `tcpunch serve` and against coturn (`turnserver -n --stun-only`),
// with the same load generator and connection count, alternated round by
// round.
func benchSTUN(ctx context.Context, cfg Config) error {
	raiseNofile(100000)
	tp, err := startServe(ctx, cfg, "")
	if err != nil {
		return err
	}
	defer tp.stop()
	ct, err := startCoturn(ctx, coturnAllocTimeout(cfg.Duration))
	if err != nil {
		return err
	}
	defer ct.stop()

	fmt.Fprintf(cfg.Out, "\n## STUN Binding over TCP (loopback, %d connections, one request in flight each, %v per run)\n\n", cfg.Conns, cfg.Duration)
	fmt.Fprintf(cfg.Out, "coturn: `%s`\n\n", coturnArgsString(coturnAllocTimeout(cfg.Duration)))
	fmt.Fprintf(cfg.Out, "| round | server | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|---|\n")
	var ratios, rpsT, rpsC, p50T, p50C, p99T, p99C []float64
	failedRounds := 0
	for r := 0; r < cfg.Rounds; r++ {
		order := []*proc{tp, ct}
		if r%2 == 1 {
			order = []*proc{ct, tp}
		}
		res := map[*proc]stunResult{}
		for _, p := range order {
			res[p] = stunLoad(ctx, p.addr, cfg.Conns, cfg.Duration)
			name := "tcpunch"
			if p == ct {
				name = "coturn"
			}
			x := res[p]
			fmt.Fprintf(cfg.Out, "| %d | %s | %s | %.3f ms | %.3f ms | %d |\n", r+1, name, si(x.rps), x.p50, x.p99, x.errs)
			cfg.logf("stun round %d %s: %.0f req/s", r+1, name, x.rps)
			if x.firstErr != "" {
				fmt.Fprintf(cfg.Out, "\n%s: first error: %s\n\n", name, x.firstErr)
			}
		}
		t, c := res[tp], res[ct]
		if t.errs > 0 || c.errs > 0 {
			failedRounds++
		}
		ratios = append(ratios, t.rps/c.rps)
		rpsT, rpsC = append(rpsT, t.rps), append(rpsC, c.rps)
		p50T, p50C = append(p50T, t.p50), append(p50C, c.p50)
		p99T, p99C = append(p99T, t.p99), append(p99C, c.p99)
	}
	fmt.Fprintf(cfg.Out, "| **median** | tcpunch | **%s** | %.3f ms | %.3f ms | |\n", si(median(rpsT)), median(p50T), median(p99T))
	fmt.Fprintf(cfg.Out, "| **median** | coturn | **%s** | %.3f ms | %.3f ms | |\n", si(median(rpsC)), median(p50C), median(p99C))
	fmt.Fprintf(cfg.Out, "\n**tcpunch / coturn requests/s: %.2f** (median of per-round ratios %v)\n", median(ratios), fmtRatios(ratios))
	if failedRounds > 0 {
		fmt.Fprintf(cfg.Out, "\n**%d of %d rounds had connection errors: their requests/s count only the requests answered before the error, so the ratio is not a fair comparison.**\n", failedRounds, cfg.Rounds)
	}

	if cfg.Profile != "" {
		prof := filepath.Join(cfg.Profile, "stun-server.pprof")
		pp, err := startServe(ctx, cfg, prof)
		if err != nil {
			return err
		}
		x := stunLoad(ctx, pp.addr, cfg.Conns, cfg.Duration)
		pp.stop()
		perfData := filepath.Join(cfg.Profile, "coturn.perf.data")
		perf := exec.CommandContext(ctx, "perf", "record", "-F", "999", "-g", "-o", perfData, "-p", strconv.Itoa(ct.pid()), "--", "sleep", fmt.Sprint(cfg.Duration.Seconds()))
		perfErr := perf.Start()
		y := stunLoad(ctx, ct.addr, cfg.Conns, cfg.Duration)
		if perfErr == nil {
			perf.Wait()
		}
		fmt.Fprintf(cfg.Out, "\nprofiled: tcpunch %s req/s under pprof (`go tool pprof -top %s`), coturn %s req/s under perf (`perf report -i %s`; %v)\n",
			si(x.rps), prof, si(y.rps), perfData, perfErr)
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only stun --rounds %d --conns %d --duration %v`\n", cfg.Rounds, cfg.Conns, cfg.Duration)
	return nil
}

func fmtRatios(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s
}

type stunResult struct {
	rps, p50, p99 float64
	errs          int
	firstErr      string
}

// stunLoad runs conns closed-loop Binding clients against addr for d
// (after a short warm-up that is not counted).
func stunLoad(ctx context.Context, addr string, conns int, d time.Duration) stunResult {
	const warm = stunWarm
	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	firstErr := ""
	var wg sync.WaitGroup
	begin := time.Now()
	startAt, stopAt := begin.Add(warm), begin.Add(warm+d)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			// A connection that fails still contributes the requests it
			// completed: a server that drops connections mid-run then shows
			// up as errors and a lower rate, not as 0 req/s.
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			fail := func(err error) {
				mu.Lock()
				if errs++; firstErr == "" && err != nil {
					firstErr = err.Error()
				}
				mu.Unlock()
			}
			cl, err := dialClient(ctx, srcAddr(50, 0), addr, 5*time.Second)
			if err != nil {
				fail(err)
				return
			}
			defer cl.reset()
			_ = cl.c.SetDeadline(stopAt.Add(5 * time.Second))
			tx := newTx()
			for n := uint32(0); ; n++ {
				t0 := time.Now()
				if !t0.Before(stopAt) {
					break
				}
				tx[0], tx[1], tx[2], tx[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
				if err := cl.send(typeBindingReq, tx, ""); err != nil {
					fail(err)
					return
				}
				t, id, err := cl.read()
				if err == nil && (t != typeBindingOK || id != tx) {
					err = fmt.Errorf("unexpected response type %#04x", t)
				}
				if err != nil {
					fail(err)
					return
				}
				if t0.After(startAt) {
					mine = append(mine, time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	return stunResult{rps: float64(len(all)) / d.Seconds(), p50: durQuantile(all, 0.5), p99: durQuantile(all, 0.99), errs: errs, firstErr: firstErr}
}

// stunWarm is stunLoad's uncounted warm-up.
const stunWarm = 300 * time.Millisecond

// coturnAllocTimeout is the --max-allocate-timeout, in seconds, that lets a
// load connection of a d-long run live to its end. coturn closes (with RST,
// it sets SO_LINGER 0) every client session that has not made a TURN
// allocation within this time of its accept, however busy the session is:
// the default for --stun-only is 3 s (TURN_MAX_ALLOCATE_TIMEOUT_STUN_ONLY in
// ns_turn_server.c), shorter than a default run (0.3 s warm-up + 4 s), so
// every connection was reset mid-run and all its samples were lost.
func coturnAllocTimeout(d time.Duration) int {
	return max(3600, int((stunWarm+d).Seconds())+60)
}

func coturnArgs(port int, dir string, allocTimeout int) []string {
	return []string{"-n", "--stun-only", "--no-udp", "--no-tls", "--no-dtls", "--no-cli",
		"--listening-ip", "127.0.0.1", "--listening-port", strconv.Itoa(port),
		"--max-allocate-timeout", strconv.Itoa(allocTimeout),
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--log-file", filepath.Join(dir, "turnserver.log"),
		"--simple-log", "--no-stdout-log"}
}

func coturnArgsString(allocTimeout int) string {
	s := "turnserver"
	for _, a := range coturnArgs(0, "DIR", allocTimeout) {
		s += " " + a
	}
	return s
}

// startCoturn runs coturn as a STUN-only server over TCP on a free
// loopback port and waits until it accepts connections.
func startCoturn(ctx context.Context, allocTimeout int) (*proc, error) {
	if _, err := exec.LookPath("turnserver"); err != nil {
		return nil, fmt.Errorf("coturn is not installed (apt-get install coturn, or make bench as root): %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "tcpunch-bench-coturn")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "turnserver", coturnArgs(port, dir, allocTimeout)...)
	// No Pdeathsig: it fires when the forking OS thread exits, and Go retires
	// threads at will (seen killing coturn mid-benchmark). stop() and ctx end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	go func() { cmd.Wait(); os.RemoveAll(dir); close(p.done) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("turnserver exited at start: %v", cmd.ProcessState)
		default:
		}
		// Ready means answering a Binding over TCP, not merely accepting:
		// coturn accepts before its STUN threads serve.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := rendezvous.MappedAddress(pctx, p.addr, netip.MustParseAddrPort("127.0.0.1:0"))
		cancel()
		if err == nil {
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("turnserver did not answer a STUN Binding on %s within 10 s", p.addr)
}
