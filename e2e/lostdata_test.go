//go:build linux

package e2e_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slowWriter takes data at about 32 KiB per 5 ms, counting it: a receiver
// whose reads are slowed, so a transfer is still under way when it dies.
type slowWriter struct{ n atomic.Int64 }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// lostDataPoints is how many random kill points each mode gets.
func lostDataPoints() int {
	if n, err := strconv.Atoi(os.Getenv("TCPUNCH_LOSTDATA_POINTS")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 5
	}
	return 20
}

// TestLostDataNeverExitsZero kills the receiving side (pipe mode, --forward
// to a slow local service, --exec with a slow child) at random points of a
// 4 MiB transfer: the sending dial must exit non-zero (5) every time, with
// the byte counts; a complete transfer exits 0.
func TestLostDataNeverExitsZero(t *testing.T) {
	for _, v := range []string{"REGISTER_RATE", "CONNECT_RATE", "NAME_CONNECT_RATE", "UNKNOWN_NAME_RATE"} {
		t.Setenv("TCPUNCH_"+v, "0")
	}
	rv, _ := serve(t, nil, "127.0.0.1:0")
	const size = 8 << 20
	points := lostDataPoints()
	beyond := 0
	defer func() {
		t.Logf("%d kills came after the sender had handed over its last byte (asserted like the others)", beyond)
	}()
	for _, mode := range []string{"pipe", "forward", "exec"} {
		t.Run(mode, func(t *testing.T) {
			for i := 0; i <= points; i++ {
				kill := i < points // the last run is the complete transfer
				name := fmt.Sprintf("lost-%s-%d", mode, i)
				code, stderr, received, handed := lostDataRun(t, rv, mode, name, size, kill)
				if kill && handed >= size {
					// The sender had handed its last byte to its kernel: only
					// the link's end-of-stream confirmation (the receiver's
					// application acknowledges what it read) tells a dead
					// receiver from a slow one. It exists: asserted too.
					beyond++
				}
				switch {
				case kill && code == 0:
					t.Errorf("run %d: the receiver died after %d of %d bytes, and dial exited 0; stderr:\n%s", i, received, size, stderr)
				case kill && code != 5:
					t.Errorf("run %d: dial exit %d, want 5 (incomplete); stderr:\n%s", i, code, stderr)
				case kill && !strings.Contains(stderr, "acknowledged"):
					t.Errorf("run %d: no byte counts in:\n%s", i, stderr)
				case !kill && code != 0:
					t.Errorf("complete transfer: dial exit %d; stderr:\n%s", code, stderr)
				}
				if kill && i == 0 {
					t.Logf("%s: %s", mode, finalLine(stderr))
				}
			}
		})
	}
}

func finalLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lostDataRun runs one transfer; with kill, the receiver is killed (-9) a
// random moment after data started to arrive. It returns dial's exit code
// and stderr, and how much the receiver had taken.
func lostDataRun(t *testing.T, rv, mode, name string, size int64, kill bool) (int, string, int64, int64) {
	t.Helper()
	var received func() int64
	var victim func() *os.Process
	var l *proc
	switch mode {
	case "pipe":
		w := &slowWriter{}
		l = start(t, nil, nil, w, "listen", "-r", rv, name)
		received = w.n.Load
		victim = func() *os.Process { return l.cmd.Process }
	case "forward":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		w := &slowWriter{}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.CopyBuffer(w, c, make([]byte, 32<<10))
		}()
		l = start(t, nil, nil, io.Discard, "listen", "-r", rv, "--forward", ln.Addr().String(), name)
		received = w.n.Load
		victim = func() *os.Process { return l.cmd.Process }
	case "exec":
		pidFile := filepath.Join(t.TempDir(), "pid")
		child := fmt.Sprintf(`echo $$ > %s; exec python3 -c 'import sys,time
n=0
while True:
    b=sys.stdin.buffer.read1(32768)
    if not b: break
    n+=len(b); time.sleep(0.005)
'`, pidFile)
		l = start(t, nil, nil, io.Discard, "listen", "-r", rv, "--exec", child, name)
		started := time.Now()
		received = func() int64 {
			if _, err := os.Stat(pidFile); err == nil {
				return max(1, int64(time.Since(started)))
			}
			return 0
		}
		victim = func() *os.Process {
			b, _ := os.ReadFile(pidFile)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("child pid: %q", b)
			}
			p, _ := os.FindProcess(pid)
			return p
		}
	}
	l.waitStderr(`listening as`, 30*time.Second)
	src := &countingReader{r: stream(3, size)}
	d := start(t, nil, src, io.Discard, "dial", "-r", rv, name)
	var got, handed int64
	if kill {
		deadline := time.Now().Add(30 * time.Second)
		for received() == 0 && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.N(400)) * time.Millisecond)
		got, handed = received(), src.n.Load()
		if err := victim().Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("killing the receiver: %v", err)
		}
	}
	code := d.wait(60 * time.Second)
	if mode != "pipe" || kill {
		l.cmd.Process.Kill()
	}
	return code, d.stderr.String(), got, handed
}

// countingReader counts what the dial process took from its stdin.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
