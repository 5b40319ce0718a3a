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
// dialer → listener over the direct path (--relay never) and over the
// relay (--relay always), and the server's CPU-seconds per GiB relayed
// (utime+stime of the `tcpunch serve` process). One run:
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
	results := map[string]float64{}
	for i := 0; i < 1; i++ {
		for _, mode := range []string{"never", "always"} {
			name := fmt.Sprintf("bench-%s-%d", mode, i)
			cpu0 := procCPU(b, srv.cmd.Process.Pid)
			// sh -c SCRIPT sh BINARY ARGS: the shell redirects, the binary
			// reads and writes the files itself.
			l := start(b, append(in(p.A), "sh", "-c", `exec "$@" > /dev/null`, "sh"), nil, nil, "listen", "-r", rv, "--relay", mode, name)
			l.waitStderr(`listening as`, 30*time.Second)
			began := time.Now()
			d := start(b, append(in(p.B), "sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | "$@"`, size), "sh"), nil, nil, "dial", "-r", rv, "--relay", mode, name)
			if code := d.wait(5 * time.Minute); code != 0 {
				b.Fatalf("dial --relay %s: exit %d: %s", mode, code, d.stderr.String())
			}
			l.wait(time.Minute)
			el := time.Since(began).Seconds()
			cpu := procCPU(b, srv.cmd.Process.Pid) - cpu0
			results[mode] = size / el / (1 << 20)
			b.Logf("--relay %-6s 1 GiB in %.2f s: %.0f MiB/s; server CPU %.2f s", mode, el, results[mode], cpu)
			if mode == "always" {
				b.Logf("server CPU per GiB relayed: %.2f s", cpu)
			}
		}
	}
	b.Logf("relayed/direct goodput: %.2f", results["always"]/results["never"])
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
