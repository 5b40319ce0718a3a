//go:build linux

package e2e_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// TestLabRelayGoodput (a benchmark, run on demand: the e2e helpers take
// a *testing.T) compares, on one drop×drop lab path, 1 GiB
// dialer → listener over the direct path (--relay never), over the relay
// (--relay always, end-to-end TLS, and again with --insecure, plaintext),
// and through HAProxy in TCP mode with splice on the same rendezvous host
// (plain bytes from a sender on peer B to a sink on peer A behind a port
// forward on A's NAT), with the CPU-seconds per GiB of the relaying
// process (utime+stime of `tcpunch serve`, or of haproxy). One run:
//
//	TCPUNCH_E2E_BENCH=1 go test -run TestLabRelayGoodput -v ./e2e
func TestLabRelayGoodput(b *testing.T) {
	if os.Getenv("TCPUNCH_E2E_BENCH") == "" {
		b.Skip("a benchmark: set TCPUNCH_E2E_BENCH=1 to run it")
	}
	natlab.Require(b)
	const size = 1 << 30
	p, err := natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Direct: true}.Build(testContext(b, time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	closeWithTest(b, p.Lab)
	rv, srv := serveRelayIn(b, p)
	type run struct {
		name  string
		args  []string
		relay bool
	}
	runs := []run{
		{"direct (TLS)", []string{"--relay", "never"}, false},
		{"relay (TLS)", []string{"--relay", "always"}, true},
		{"relay (--insecure)", []string{"--relay", "always", "--insecure"}, true},
	}
	goodput := map[string]float64{}
	for i, r := range runs {
		name := fmt.Sprintf("bench-%d", i)
		cpu0 := procCPU(b, srv.cmd.Process.Pid)
		// sh -c SCRIPT sh BINARY ARGS: the shell redirects, the binary
		// reads and writes the files itself.
		l := start(b, append(in(p.A), "sh", "-c", `exec "$@" > /dev/null`, "sh"), nil, nil, append(append([]string{"listen", "-r", rv}, r.args...), name)...)
		l.waitStderr(`listening as`, 30*time.Second)
		began := time.Now()
		d := start(b, append(in(p.B), "sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | "$@"`, size), "sh"), nil, nil, append(append([]string{"dial", "-r", rv}, r.args...), name)...)
		if code := d.wait(5 * time.Minute); code != 0 {
			b.Fatalf("dial %v: exit %d: %s", r.args, code, d.stderr.String())
		}
		l.wait(time.Minute)
		el := time.Since(began).Seconds()
		cpu := procCPU(b, srv.cmd.Process.Pid) - cpu0
		goodput[r.name] = size / el / (1 << 20)
		b.Logf("%-20s 1 GiB in %.2f s: %4.0f MiB/s; server CPU %.2f s per GiB", r.name, el, goodput[r.name], cpu)
	}

	el, cpu := haproxyRelay(b, p, size)
	goodput["haproxy"] = size / el / (1 << 20)
	b.Logf("%-20s 1 GiB in %.2f s: %4.0f MiB/s; haproxy CPU %.2f s per GiB", "haproxy (plain)", el, goodput["haproxy"], cpu)

	b.Logf("relayed/direct goodput: %.2f", goodput["relay (TLS)"]/goodput["direct (TLS)"])
	b.Logf("tcpunch relay/HAProxy goodput: %.2f with TLS, %.2f with --insecure (HAProxy relays plain bytes)",
		goodput["relay (TLS)"]/goodput["haproxy"], goodput["relay (--insecure)"]/goodput["haproxy"])
}

// procCPU is a process's user+system CPU time in seconds.
func procCPU(tb *testing.T, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}
