package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// proc is a server process the bench started: tcpunch serve, coturn, ...
type proc struct {
	cmd  *exec.Cmd
	addr string // where it listens
	done chan struct{}
}

// startServe runs `tcpunch serve` (or, with profile set, the bench's own
// profiling wrapper around the same server) on a free loopback port and
// waits until it listens (its ready line).
func startServe(ctx context.Context, cfg Config, profile string, args ...string) (*proc, error) {
	base := []string{"serve", "--listen", "127.0.0.1:0", "--grace", "1s"}
	if profile != "" {
		base = []string{"bench", "serve", "--cpuprofile", profile, "--listen", "127.0.0.1:0"}
	}
	cmd := exec.CommandContext(ctx, cfg.Exe, append(base, args...)...)
	return startReady(cmd)
}

// labWithServer builds the scenario's lab and runs `tcpunch serve` on its
// rendezvous host; close the pair and stop the server when done.
func labWithServer(ctx context.Context, cfg Config, sc natlab.Scenario) (*natlab.Pair, *proc, error) {
	pair, err := sc.Build(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The runs register a listener each, back to back from one NAT's
	// address: faster than a real listener reconnects, so the per-source
	// Register rate (2/s, bursts of 10) would refuse them from the 11th
	// on. The benchmark measures punching, not the limiter: lift it.
	srv, err := startReady(pair.Rendezvous().Command(ctx, cfg.Exe, "serve", "--listen", pair.RendezvousAddr().String()+":3478",
		"--register-rate", "0", "--connect-rate", "0"))
	if err != nil {
		pair.Close()
		return nil, nil, err
	}
	return pair, srv, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to end (SIGINT), then kills its group.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// rssKB is the resident set of pid (VmRSS in /proc/PID/status), in kB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// netstat reads the TcpExt counters of this network namespace.
func netstat() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return out
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		k, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(k) != len(v) || len(k) == 0 || k[0] != "TcpExt:" {
			continue
		}
		for j := 1; j < len(k); j++ {
			n, _ := strconv.ParseInt(v[j], 10, 64)
			out[k[j]] = n
		}
	}
	return out
}
