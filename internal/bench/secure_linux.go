package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
	"github.com/tcpunch/tcpunch/punch"
)

// benchSecure measures the secure link through the lab (drop×drop):
//   - setup: from the punch's start to a verified, encrypted connection,
//     in round trips, at each one-way delay of cfg.Delays (default 10, 25,
//     50, 100 ms), for the secret and the code mode: the dialer (TLS
//     client, may send) and the listener (has verified the client);
//   - goodput, no added delay: the CLI pipe with a secret against the same
//     pipe with --insecure (the confirmation framing only) and against
//     socat with OpenSSL TLS 1.3 (OPENSSL-LISTEN / OPENSSL) through a port
//     forward on the same path.
func benchSecure(ctx context.Context, cfg Config) error {
	if err := natlab.Check().Err(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tcpunch-bench-secure-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secretFile := filepath.Join(dir, "secret")
	s, err := punch.GenerateSecret()
	if err != nil {
		return err
	}
	if err := os.WriteFile(secretFile, []byte(s.String()+"\n"), 0o600); err != nil {
		return err
	}
	var delays []time.Duration
	for _, d := range cfg.Delays {
		if d > 0 { // round trips need a delay to count in
			delays = append(delays, d)
		}
	}
	if len(delays) == 0 {
		delays = []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	runs := max(cfg.Runs, 1)
	fmt.Fprintf(cfg.Out, "\n## Secure link setup (real-NAT lab, drop×drop, %d runs per cell; medians; RTT = 2 × one-way delay)\n\n", runs)
	fmt.Fprintf(cfg.Out, "Punch = punch start → verified and nominated; TLS = the link's handshake after it (code mode: CPace in front). "+
		"Dialer total: it may send; listener total: it has verified the dialer. Goal: ≤ 2.5 RTT + 10 ms.\n\n")
	fmt.Fprintf(cfg.Out, "| one-way | mode | dialer punch | dialer TLS | **dialer total** | listener punch | listener TLS | **listener total** |\n|---|---|---|---|---|---|---|---|\n")
	drop := natlab.Side{NAT: natlab.NATDrop}
	for _, d := range delays {
		sc := natlab.Scenario{Name: "drop×drop", A: drop, B: drop, Delay: d, Direct: true}
		pair, srv, err := labWithServer(ctx, cfg, sc)
		if err != nil {
			return err
		}
		rv := srv.addr
		rtt := 2 * float64(d.Microseconds()) / 1000
		for _, mode := range []string{"secret", "code"} {
			var dp, dh, lp, lh []float64
			for r := range runs {
				dr, lr, err := secureOnce(ctx, cfg, pair, rv, mode, secretFile, fmt.Sprintf("setup-%d", r))
				if err != nil {
					pair.Close()
					srv.stop()
					return fmt.Errorf("secure setup %v %s run %d: %w", d, mode, r+1, err)
				}
				dp, dh = append(dp, dr.ElapsedMS), append(dh, dr.HandshakeMS)
				lp, lh = append(lp, lr.ElapsedMS), append(lh, lr.HandshakeMS)
				cfg.logf("secure %v %s run %d: dialer %.1f+%.1f ms, listener %.1f+%.1f ms", d, mode, r+1, dr.ElapsedMS, dr.HandshakeMS, lr.ElapsedMS, lr.HandshakeMS)
			}
			cell := func(ms float64) string { return fmt.Sprintf("%.1f ms (%.2f RTT)", ms, ms/rtt) }
			dt, lt := median(sum(dp, dh)), median(sum(lp, lh))
			fmt.Fprintf(cfg.Out, "| %v | %s | %s | %s | **%s** | %s | %s | **%s** |\n", d, mode,
				cell(median(dp)), cell(median(dh)), cell(dt), cell(median(lp)), cell(median(lh)), cell(lt))
		}
		pair.Close()
		srv.stop()
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only secure --runs %d --delays %s`\n", runs, msList(delays))
	return secureGoodput(ctx, cfg, secretFile, dir)
}

func sum(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// secureReport is the part of --report json this benchmark reads.
type secureReport struct {
	ElapsedMS   float64 `json:"elapsed_ms"`
	HandshakeMS float64 `json:"handshake_ms"`
	Auth        string  `json:"auth"`
}

var codeRE = regexp.MustCompile(`one-time code: (\S+)`)

// secureOnce runs one listen/dial pair with nothing to send and returns
// both --report json lines.
func secureOnce(ctx context.Context, cfg Config, pair *natlab.Pair, rv, mode, secretFile, name string) (dialer, listener secureReport, err error) {
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	common := []string{"--report", "json", "--timeout", "20s", "-r", rv}
	lArgs, dArgs := append([]string{"listen"}, common...), append([]string{"dial"}, common...)
	if mode == "secret" {
		lArgs = append(lArgs, "--secret-file", secretFile, name)
		dArgs = append(dArgs, "--secret-file", secretFile, name)
	}
	l := pair.A.Command(rctx, cfg.Exe, lArgs...)
	l.Env = append(os.Environ(), "TCPUNCH_SECRET=", "TCPUNCH_SECRET_FILE=")
	ls, err := watchStderr(l)
	if err != nil {
		return dialer, listener, err
	}
	defer l.Wait()
	line, err := ls.wait(rctx, func(s string) bool {
		return strings.Contains(s, "one-time code:") || strings.Contains(s, "listening as")
	})
	if err != nil {
		return dialer, listener, fmt.Errorf("listener: %w", err)
	}
	if mode == "code" {
		m := codeRE.FindStringSubmatch(line)
		if m == nil {
			return dialer, listener, fmt.Errorf("no code in %q", line)
		}
		dArgs = append(dArgs, m[1])
	}
	d := pair.B.Command(rctx, cfg.Exe, dArgs...)
	d.Env = l.Env
	ds, err := watchStderr(d)
	if err != nil {
		return dialer, listener, err
	}
	derr := d.Wait()
	lerr := l.Wait()
	if derr != nil || lerr != nil {
		return dialer, listener, fmt.Errorf("dial: %v (%s); listen: %v (%s)", derr, ds.tail(), lerr, ls.tail())
	}
	if err := json.Unmarshal([]byte(ds.report()), &dialer); err != nil {
		return dialer, listener, fmt.Errorf("dialer report: %w", err)
	}
	if err := json.Unmarshal([]byte(ls.report()), &listener); err != nil {
		return dialer, listener, fmt.Errorf("listener report: %w", err)
	}
	return dialer, listener, nil
}

// stderrWatch collects a process's stderr lines.
type stderrWatch struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
	done  chan struct{}
}

func watchStderr(cmd *exec.Cmd) (*stderrWatch, error) {
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	w := &stderrWatch{added: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
			select {
			case w.added <- struct{}{}:
			default:
			}
		}
	}()
	return w, nil
}

func (w *stderrWatch) wait(ctx context.Context, match func(string) bool) (string, error) {
	for seen := 0; ; {
		w.mu.Lock()
		lines := w.lines
		w.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], nil
			}
		}
		select {
		case <-w.added:
		case <-w.done:
			w.mu.Lock()
			n := len(w.lines)
			w.mu.Unlock()
			if n == seen {
				return "", fmt.Errorf("exited: %s", w.tail())
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (w *stderrWatch) report() string {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.HasPrefix(l, "{") {
			return l
		}
	}
	return ""
}

func (w *stderrWatch) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines[max(0, len(w.lines)-4):], " | ")
}

// secureGoodput: the CLI pipe with a secret, with --insecure, and socat
// with OpenSSL TLS 1.3, alternated round by round (drop×drop, no delay).
func secureGoodput(ctx context.Context, cfg Config, secretFile, dir string) error {
	if _, err := exec.LookPath("socat"); err != nil {
		return fmt.Errorf("socat is not installed (apt-get install socat): %w", err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.CommandContext(ctx, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=bench").CombinedOutput(); err != nil {
		return fmt.Errorf("making socat's certificate: %v: %s", err, out)
	}
	drop := natlab.Side{NAT: natlab.NATDrop}
	pair, srv, err := labWithServer(ctx, cfg, natlab.Scenario{Name: "drop×drop", A: drop, B: drop, Direct: true})
	if err != nil {
		return err
	}
	defer pair.Close()
	defer srv.stop()
	const tlsPort = 5203
	if err := pair.A.Router().ForwardTCP(tlsPort, netip.AddrPortFrom(pair.A.Addr(), tlsPort)); err != nil {
		return fmt.Errorf("port forward on NAT A: %w", err)
	}
	natA := pair.A.Router().Addr()
	exe, rv, dur := cfg.Exe, srv.addr, cfg.Duration
	clean := func(c *exec.Cmd) *exec.Cmd {
		c.Env = append(os.Environ(), "TCPUNCH_SECRET=", "TCPUNCH_SECRET_FILE=")
		return c
	}
	kinds := []struct {
		name string
		run  func(r int) (goodput, error)
	}{
		{"tcpunch pipe, secret (TLS 1.3)", func(r int) (goodput, error) {
			name := fmt.Sprintf("sec-%d", r)
			return transfer(ctx, clean(pair.A.Command(ctx, exe, "listen", "-s", secretFile, "-r", rv, name)), "listening as",
				clean(pair.B.Command(ctx, exe, "dial", "-s", secretFile, "-r", rv, name)), dur)
		}},
		{"tcpunch pipe, --insecure", func(r int) (goodput, error) {
			name := fmt.Sprintf("ins-%d", r)
			return transfer(ctx, clean(pair.A.Command(ctx, exe, "listen", "--insecure", "-r", rv, name)), "listening as",
				clean(pair.B.Command(ctx, exe, "dial", "--insecure", "-r", rv, name)), dur)
		}},
		{"socat OpenSSL TLS 1.3 (port forward)", func(r int) (goodput, error) {
			tlsOpt := ",verify=0,openssl-min-proto-version=TLS1.3"
			return transfer(ctx, pair.A.Command(ctx, "socat", "-d", "-d", "-b", "131072", "-u",
				fmt.Sprintf("OPENSSL-LISTEN:%d,reuseaddr,cert=%s,key=%s%s", tlsPort, cert, key, tlsOpt), "STDOUT"), "listening on",
				pair.B.Command(ctx, "socat", "-b", "131072", "-u", "STDIN", fmt.Sprintf("OPENSSL:%v:%d%s", natA, tlsPort, tlsOpt)), dur)
		}},
	}
	fmt.Fprintf(cfg.Out, "\n## Secure goodput (real-NAT lab, drop×drop, no added delay, %v per transfer)\n\n", dur)
	fmt.Fprintf(cfg.Out, "| round | %s | %s | %s |\n|---|---|---|---|\n", kinds[0].name, kinds[1].name, kinds[2].name)
	results := make([][]float64, len(kinds))
	var vsPlain, vsSocat []float64
	for r := 0; r < cfg.Rounds; r++ {
		order := []int{0, 1, 2}
		if r%2 == 1 {
			order = []int{2, 1, 0}
		}
		got := make([]float64, len(kinds))
		for _, i := range order {
			g, err := kinds[i].run(r)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", kinds[i].name, r+1, err)
			}
			got[i] = g.mbps()
			results[i] = append(results[i], got[i])
			cfg.logf("secure goodput round %d %s: %.0f Mbit/s", r+1, kinds[i].name, got[i])
		}
		vsPlain, vsSocat = append(vsPlain, got[0]/got[1]), append(vsSocat, got[0]/got[2])
		fmt.Fprintf(cfg.Out, "| %d | %.0f Mbit/s | %.0f Mbit/s | %.0f Mbit/s |\n", r+1, got[0], got[1], got[2])
	}
	fmt.Fprintf(cfg.Out, "| **median** | **%.0f** | **%.0f** | **%.0f** |\n", median(results[0]), median(results[1]), median(results[2]))
	fmt.Fprintf(cfg.Out, "\n**encrypted / plain: %.2f** (per round %s; goal ≥ 0.7); **tcpunch TLS pipe / socat TLS: %.2f** (per round %s; goal ≥ 1.0)\n",
		median(vsPlain), fmtRatios(vsPlain), median(vsSocat), fmtRatios(vsSocat))
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only secure --rounds %d --duration %v`\n", cfg.Rounds, dur)
	return nil
}

func msList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprint(d.Milliseconds())
	}
	return strings.Join(s, ",")
}
