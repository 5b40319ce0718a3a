//go:build linux

package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// TestUnansweredSYNResentOnOneSocket: a SYN that gets no answer is resent by
// the kernel on the same socket (same initial sequence number), not by a new
// socket per retry, whose new sequence number a Linux NAT that saw the old
// one can refuse for minutes (BENCHMARKS.md, bug 3). The dialer runs under
// strace; its peer is frozen behind a drop NAT, so every SYN to it is lost.
// One connect(2) to the peer's public endpoint must carry all the attempts
// the dialer reports.
func TestUnansweredSYNResentOnOneSocket(t *testing.T) {
	natlab.Require(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("strace is not installed (CI=true: this fails instead of skipping)")
		}
		t.Skip("strace is not installed")
	}
	t.Parallel()
	c := cell{Scenario: natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Direct: true}}
	p := c.build(t)
	rv := serveIn(t, p)

	l := start(t, in(p.A), nil, nil, "listen", "-r", rv, "--timeout=60s", "frozen")
	l.waitStderr(`listening as`, 30*time.Second)
	l.signal(syscall.SIGSTOP) // registered, but it will never punch back
	defer l.signal(syscall.SIGCONT)

	trace := filepath.Join(t.TempDir(), "connect.trace")
	d := start(t, append(in(p.B), strace, "-f", "-e", "trace=connect", "-o", trace), nil, nil,
		"dial", "-r", rv, "--timeout=4500ms", "frozen")
	if code := d.wait(60 * time.Second); code != 3 {
		t.Fatalf("dial to a frozen peer: exit %d, want 3 (no direct path)", code)
	}
	peer := publicAddr(p.A).String()
	// "... 4 attempts to 203.0.113.10:35749 (last: ...)"
	m := regexp.MustCompile(`(\d+) attempts to ` + regexp.QuoteMeta(peer) + `:(\d+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no attempt count for %s in the dialer's last line:\n%s", peer, d.stderr.String())
	}
	attempts, _ := strconv.Atoi(m[1])
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	connects := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, `inet_addr("`+peer+`")`) && strings.Contains(line, "htons("+m[2]+")") {
			connects++
		}
	}
	t.Logf("%d attempts to %s:%s over %d connect(2) calls", attempts, peer, m[2], connects)
	if attempts < 3 {
		t.Errorf("%d attempts in 4.5 s, want a SYN about every second (>= 3)", attempts)
	}
	if connects != 1 {
		t.Errorf("%d connect(2) calls to %s:%s for %d attempts, want 1: the kernel should resend the SYN on one socket\n%s",
			connects, peer, m[2], attempts, raw)
	}
}
