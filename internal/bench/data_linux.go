package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

const (
	plainPort = 5201
	socatPort = 5202
)

// benchData: goodput through the lab (drop×drop, no added delay) of
//   - a punched connection against a plain TCP connection on the same path
//     (a port forward on NAT A): both driven by `tcpunch bench peer`, the
//     same send and receive loop, so only how the connection was made
//     differs;
//   - the CLI pipe (`tcpunch dial` stdin → `tcpunch listen` stdout) against
//     socat on the same path, both fed and drained by this process.
//
// The four are alternated round by round; ratios are medians over rounds.
func benchData(ctx context.Context, cfg Config) error {
	if err := natlab.Check().Err(); err != nil {
		return err
	}
	if _, err := exec.LookPath("socat"); err != nil {
		return fmt.Errorf("socat is not installed (apt-get install socat, or make bench as root): %w", err)
	}
	sc := natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Direct: true}
	pair, srv, err := labWithServer(ctx, cfg, sc)
	if err != nil {
		return err
	}
	defer pair.Close()
	defer srv.stop()
	// The plain path: NAT A forwards two ports to peer A, so B reaches A
	// across both NATs and both WAN links, as the punched connection does.
	for _, port := range []uint16{plainPort, socatPort} {
		if err := pair.A.Router().ForwardTCP(port, netip.AddrPortFrom(pair.A.Addr(), port)); err != nil {
			return fmt.Errorf("port forward on NAT A: %w", err)
		}
	}
	natA := pair.A.Router().Addr()
	exe, rv, dur := cfg.Exe, srv.addr, cfg.Duration

	type kind struct {
		name    string
		run     func(round int) (goodput, error)
		results []float64
	}
	peerArgs := func(args ...string) []string { return append([]string{"bench", "peer"}, args...) }
	kinds := []*kind{
		{name: "punched (tcpunch bench peer)", run: func(r int) (goodput, error) {
			name := fmt.Sprintf("data-%d", r)
			return transfer(ctx, pair.A.Command(ctx, exe, peerArgs("--mode", "listen", "--rendezvous", rv, "--name", name)...), "ready",
				pair.B.Command(ctx, exe, peerArgs("--mode", "dial", "--rendezvous", rv, "--name", name, "--duration", dur.String())...), 0)
		}},
		{name: "plain TCP (tcpunch bench peer, port forward)", run: func(r int) (goodput, error) {
			return transfer(ctx, pair.A.Command(ctx, exe, peerArgs("--mode", "plain-listen", "--addr", fmt.Sprintf(":%d", plainPort))...), "ready",
				pair.B.Command(ctx, exe, peerArgs("--mode", "plain-dial", "--addr", fmt.Sprintf("%v:%d", natA, plainPort), "--duration", dur.String())...), 0)
		}},
		{name: "CLI pipe (tcpunch dial → tcpunch listen)", run: func(r int) (goodput, error) {
			name := fmt.Sprintf("pipe-%d", r)
			return transfer(ctx, pair.A.Command(ctx, exe, "listen", "--insecure", "-r", rv, name), "listening as",
				pair.B.Command(ctx, exe, "dial", "--insecure", "-r", rv, name), dur)
		}},
		// socat's default 8 KiB block would make the comparison about
		// block size; 128 KiB gives it its best case.
		{name: "socat pipe (socat -b 131072 → socat, port forward)", run: func(r int) (goodput, error) {
			return transfer(ctx, pair.A.Command(ctx, "socat", "-d", "-d", "-b", "131072", "-u", fmt.Sprintf("TCP-LISTEN:%d,reuseaddr", socatPort), "STDOUT"), "listening on",
				pair.B.Command(ctx, "socat", "-b", "131072", "-u", "STDIN", fmt.Sprintf("TCP:%v:%d", natA, socatPort)), dur)
		}},
	}
	fmt.Fprintf(cfg.Out, "\n## Data path (real-NAT lab, drop×drop, no added delay, %v per transfer, goodput from first byte to EOF at the receiver)\n\n", dur)
	fmt.Fprintf(cfg.Out, "| round | %s | %s | %s | %s |\n|---|---|---|---|---|\n", kinds[0].name, kinds[1].name, kinds[2].name, kinds[3].name)
	var punchedRatio, pipeRatio []float64
	for r := 0; r < cfg.Rounds; r++ {
		order := []int{0, 1, 2, 3}
		if r%2 == 1 {
			order = []int{1, 0, 3, 2}
		}
		got := make([]float64, 4)
		for _, i := range order {
			g, err := kinds[i].run(r)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", kinds[i].name, r+1, err)
			}
			got[i] = g.mbps()
			kinds[i].results = append(kinds[i].results, got[i])
			cfg.logf("data round %d %s: %.0f Mbit/s", r+1, kinds[i].name, got[i])
		}
		punchedRatio = append(punchedRatio, got[0]/got[1])
		pipeRatio = append(pipeRatio, got[2]/got[3])
		fmt.Fprintf(cfg.Out, "| %d | %.0f Mbit/s | %.0f Mbit/s | %.0f Mbit/s | %.0f Mbit/s |\n", r+1, got[0], got[1], got[2], got[3])
	}
	fmt.Fprintf(cfg.Out, "| **median** | **%.0f** | **%.0f** | **%.0f** | **%.0f** |\n",
		median(kinds[0].results), median(kinds[1].results), median(kinds[2].results), median(kinds[3].results))
	fmt.Fprintf(cfg.Out, "\n**punched / plain: %.2f** (per round %s); **tcpunch pipe / socat: %.2f** (per round %s)\n",
		median(punchedRatio), fmtRatios(punchedRatio), median(pipeRatio), fmtRatios(pipeRatio))
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only data --rounds %d --duration %v`\n", cfg.Rounds, dur)
	return nil
}

// transfer starts recv, waits for ready on its stderr, starts send and
// returns the receiver's goodput. feed > 0: this process writes into the
// sender's stdin for feed and counts the receiver's stdout; otherwise the
// receiver prints its own goodput as JSON on stdout.
func transfer(ctx context.Context, recv *exec.Cmd, ready string, send *exec.Cmd, feed time.Duration) (goodput, error) {
	ctx, cancel := context.WithTimeout(ctx, feed+60*time.Second)
	defer cancel()
	out, err := recv.StdoutPipe()
	if err != nil {
		return goodput{}, err
	}
	errp, err := recv.StderrPipe()
	if err != nil {
		return goodput{}, err
	}
	if err := recv.Start(); err != nil {
		return goodput{}, err
	}
	defer func() { cancel(); recv.Wait() }()
	readyc := make(chan struct{})
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(errp)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), ready) {
				seen = true
				close(readyc)
			} else if tail.Len() < 2000 {
				tail.WriteString(sc.Text() + " | ")
			}
		}
		if !seen {
			close(readyc)
		}
	}()
	select {
	case <-readyc:
	case <-ctx.Done():
		return goodput{}, ctx.Err()
	}
	var in io.WriteCloser
	if feed > 0 {
		if in, err = send.StdinPipe(); err != nil {
			return goodput{}, err
		}
	}
	var sendErr strings.Builder
	send.Stderr = &sendErr
	if err := send.Start(); err != nil {
		return goodput{}, err
	}
	defer func() { cancel(); send.Wait() }()
	if feed > 0 {
		go func() {
			buf := make([]byte, chunk)
			for end := time.Now().Add(feed); time.Now().Before(end); {
				if _, err := in.Write(buf); err != nil {
					break
				}
			}
			in.Close()
		}()
		g, err := count(out)
		if err != nil {
			return g, fmt.Errorf("%w (receiver: %s sender: %s)", err, tail.String(), sendErr.String())
		}
		return g, nil
	}
	var g goodput
	if err := json.NewDecoder(out).Decode(&g); err != nil {
		return g, fmt.Errorf("receiver's result: %w (receiver: %s sender: %s)", err, tail.String(), sendErr.String())
	}
	return g, nil
}
