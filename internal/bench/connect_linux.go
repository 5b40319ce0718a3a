package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// benchConnect: time to connect through the real-NAT lab. For every NAT
// pair and one-way delay, cfg.Runs times: a `tcpunch listen` behind NAT A
// registers, then a `tcpunch dial` starts behind NAT B. The punch phase is
// the dialer's --report elapsed_ms (peer info received → verified,
// nominated connection); the cold start is the bench's clock from starting
// the dialer process (started inside its namespace) to its "connected" line.
func benchConnect(ctx context.Context, cfg Config) error {
	if err := natlab.Check().Err(); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Out, "\n## Time to connect (real-NAT lab, %d runs per row)\n\n", cfg.Runs)
	fmt.Fprintf(cfg.Out, "RTT is the peer-to-peer round trip (2 × one-way). Floor = 1.5 RTT (SYNs cross: 1 RTT; hello: ½ RTT); target: punch p50 ≤ floor + 10 ms. ")
	fmt.Fprintf(cfg.Out, "Cold floor = 2.5 RTT (TCP handshake and Connect to the rendezvous, which is ½ RTT away each way, then the punch). A run that has not connected after 6 s (`--timeout 6s`) counts as failed.\n\n")
	fmt.Fprintf(cfg.Out, "| NATs | one-way | RTT | floor | punch p50 | punch max | p50 in RTTs | p50 − floor | listener punch p50 | peer info at (in-process) p50 | cold p50 | cold max | cold p50 in RTTs | ok | methods | attempts p50 / max |\n")
	fmt.Fprintf(cfg.Out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, kind := range []natlab.NATKind{natlab.NATDrop, natlab.NATReject} {
		for _, d := range cfg.Delays {
			if err := connectCell(ctx, cfg, kind, d); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only connect --runs %d --delays %s`\n", cfg.Runs, delaysString(cfg.Delays))
	return nil
}

func delaysString(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, strconv.Itoa(int(d.Milliseconds())))
	}
	return strings.Join(s, ",")
}

type peerReport struct {
	Method    string  `json:"method"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Attempts  int     `json:"attempts"`
}

type connectRun struct {
	punch, listenerPunch, peerInfoAt, cold float64 // ms
	method                                 string
	attempts                               int
}

func connectCell(ctx context.Context, cfg Config, kind natlab.NATKind, oneWay time.Duration) error {
	sc := natlab.Scenario{Name: kind.String() + "×" + kind.String(), A: natlab.Side{NAT: kind}, B: natlab.Side{NAT: kind}, Delay: oneWay, Direct: true}
	pair, srv, err := labWithServer(ctx, cfg, sc)
	if err != nil {
		return err
	}
	defer pair.Close()
	defer srv.stop()

	var runs []connectRun
	failures := 0
	var firstErr error
	for i := 0; i < cfg.Runs && ctx.Err() == nil; i++ {
		r, err := connectOnce(ctx, cfg, pair, srv.addr, fmt.Sprintf("b%d-%d", oneWay.Milliseconds(), i))
		if err != nil {
			failures++
			if firstErr == nil {
				firstErr = err
			}
			cfg.logf("connect %s %v run %d: %v", sc.Name, oneWay, i, err)
			continue
		}
		runs = append(runs, r)
	}
	var punchMS, lpunch, pinfo, cold, att []float64
	methods := map[string]int{}
	for _, r := range runs {
		punchMS = append(punchMS, r.punch)
		lpunch = append(lpunch, r.listenerPunch)
		pinfo = append(pinfo, r.peerInfoAt)
		cold = append(cold, r.cold)
		att = append(att, float64(r.attempts))
		methods[r.method]++
	}
	rtt := 2 * ms(oneWay)
	floor := 1.5 * rtt
	inRTT := func(x float64) string {
		if rtt == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", x/rtt)
	}
	fmt.Fprintf(cfg.Out, "| %s | %.0f ms | %.0f ms | %.0f ms | %.1f ms | %.1f ms | %s | %+.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %s | %d/%d | %s | %.0f / %.0f |\n",
		sc.Name, ms(oneWay), rtt, floor, median(punchMS), maxOf(punchMS), inRTT(median(punchMS)), median(punchMS)-floor,
		median(lpunch), median(pinfo), median(cold), maxOf(cold), inRTT(median(cold)), len(runs), len(runs)+failures,
		fmtMethods(methods), median(att), maxOf(att))
	cfg.logf("connect %s %v: punch p50 %.1f ms (floor %.0f), cold p50 %.1f ms, %d/%d ok", sc.Name, oneWay, median(punchMS), floor, median(cold), len(runs), len(runs)+failures)
	if len(runs) == 0 {
		return fmt.Errorf("%s at %v: no run connected: %w", sc.Name, oneWay, firstErr)
	}
	return nil
}

func fmtMethods(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var s []string
	for _, k := range ks {
		s = append(s, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(s, ", ")
}

var stampRE = regexp.MustCompile(`^tcpunch: \[\s*([0-9.]+) ms\] (.*)$`)

// peerProc is a listen or dial process with its stderr being read.
type peerProc struct {
	cmd    *exec.Cmd
	lines  chan stamped
	report chan peerReport
	done   chan struct{}
	once   sync.Once
	err    error
}

type stamped struct {
	at     time.Time // when the bench read the line
	inProc float64   // the process's own -v stamp, ms since it started; -1 if none
	text   string
}

func startPeer(cmd *exec.Cmd) (*peerProc, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &peerProc{cmd: cmd, lines: make(chan stamped, 256), report: make(chan peerReport, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s := stamped{at: time.Now(), inProc: -1, text: sc.Text()}
			if strings.HasPrefix(s.text, "{") {
				var r peerReport
				if json.Unmarshal([]byte(s.text), &r) == nil {
					p.report <- r
				}
				continue
			}
			if m := stampRE.FindStringSubmatch(s.text); m != nil {
				s.inProc, _ = strconv.ParseFloat(m[1], 64)
				s.text = m[2]
			}
			select {
			case p.lines <- s:
			default:
			}
		}
		close(p.lines)
	}()
	return p, nil
}

// waitLine waits for a line containing sub.
func (p *peerProc) waitLine(ctx context.Context, sub string) (stamped, error) {
	var seen []string
	for {
		select {
		case s, ok := <-p.lines:
			if !ok {
				return s, fmt.Errorf("exited before %q; its last lines: %s", sub, strings.Join(seen, " | "))
			}
			if seen = append(seen, s.text); len(seen) > 4 {
				seen = seen[1:]
			}
			if strings.Contains(s.text, sub) {
				return s, nil
			}
		case <-ctx.Done():
			return stamped{}, fmt.Errorf("waiting for %q: %w", sub, ctx.Err())
		}
	}
}

func (p *peerProc) finish() error {
	p.once.Do(func() { <-p.done; p.err = p.cmd.Wait() })
	return p.err
}

func connectOnce(ctx context.Context, cfg Config, pair *natlab.Pair, rv, name string) (connectRun, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// --insecure: this measures the punch; the secure link's handshake is
	// the e2e TestSecureLab's handshake_ms (BENCHMARKS.md).
	args := []string{"-v", "--insecure", "--report", "json", "--timeout", "6s", "-r", rv, name}
	l, err := startPeer(pair.A.Command(rctx, cfg.Exe, append([]string{"listen"}, args...)...))
	if err != nil {
		return connectRun{}, err
	}
	defer func() { cancel(); l.finish() }()
	if _, err := l.waitLine(rctx, "listening as"); err != nil {
		return connectRun{}, fmt.Errorf("listener: %w", err)
	}
	t0 := time.Now()
	d, err := startPeer(pair.B.Command(rctx, cfg.Exe, append([]string{"dial"}, args...)...))
	if err != nil {
		return connectRun{}, err
	}
	defer func() { cancel(); d.finish() }()
	info, err := d.waitLine(rctx, "peer found")
	if err != nil {
		return connectRun{}, fmt.Errorf("dialer: %w", err)
	}
	conn, err := d.waitLine(rctx, "connected to")
	if err != nil {
		return connectRun{}, fmt.Errorf("dialer: %w", err)
	}
	r := connectRun{cold: ms(conn.at.Sub(t0)), peerInfoAt: info.inProc}
	select {
	case rep := <-d.report:
		r.punch, r.method, r.attempts = rep.ElapsedMS, rep.Method, rep.Attempts
	case <-rctx.Done():
		return r, fmt.Errorf("dialer: no report: %w", rctx.Err())
	}
	select {
	case rep := <-l.report:
		r.listenerPunch = rep.ElapsedMS
	case <-rctx.Done():
		return r, fmt.Errorf("listener: no report: %w", rctx.Err())
	}
	if err := d.finish(); err != nil {
		return r, fmt.Errorf("dialer exited: %w", err)
	}
	if err := l.finish(); err != nil {
		return r, fmt.Errorf("listener exited: %w", err)
	}
	return r, nil
}
