//go:build linux

package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/internal/testnet"
)

// tcpunchBin is the binary under test, built once by TestMain exactly as a
// user builds it.
var tcpunchBin string

func TestMain(m *testing.M) {
	flag.Parse()
	// The lab cells wait on timers, delays and timeouts, not on the CPU:
	// run more of them at once than GOMAXPROCS (the default -parallel)
	// unless -parallel was given.
	parallelGiven := false
	flag.Visit(func(f *flag.Flag) { parallelGiven = parallelGiven || f.Name == "test.parallel" })
	if !parallelGiven {
		flag.Set("test.parallel", "8")
	}
	if labReady() {
		sweepStaleLabs() // namespaces of killed earlier runs
	}
	dir, err := os.MkdirTemp("", "tcpunch-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tcpunchBin = filepath.Join(dir, "tcpunch")
	// Every listen and dial of the tests holds this secret unless it says
	// otherwise (--insecure, its own --secret-file): the user's default path.
	secretFile = filepath.Join(dir, "secret")
	if err := writeSecret(secretFile); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", tcpunchBin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if bin := os.Getenv("TCPUNCH_E2E_BIN"); bin != "" {
		// A binary built elsewhere (a release build, another GOOS/GOARCH
		// emulated, ...) instead of building one.
		tcpunchBin, build = bin, exec.Command("true")
	}
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tcpunch:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	w, done := summaryWriter()
	writeSummary(w)
	done()
	if left := leftoverNamespaces(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: lab namespaces left behind: %s\n", strings.Join(left, " "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a tcpunch process started by a test.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	ready  *ready.Waiter // the ready line of serve and listen (package ready)
	done   chan struct{}
	err    error
}

// syncBuffer collects a process's output while tests read it (a plain
// bytes.Buffer races with the goroutine os/exec copies into it).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes is a copy of what was written so far.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Len is how many bytes were written so far.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs the binary (prefix, e.g. a lab node's CommandPrefix, may be empty) and
// kills it at the end of the test if it is still running.
func start(t *testing.T, prefix []string, stdin io.Reader, stdout io.Writer, args ...string) *proc {
	t.Helper()
	argv := append(append([]string{}, prefix...), append([]string{tcpunchBin}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	p := &proc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.Env = append(os.Environ(), "TCPUNCH_RENDEZVOUS=") // tests say where, explicitly
	if ownTrust(args) {
		cmd.Env = append(cmd.Env, "TCPUNCH_SECRET_FILE=", "TCPUNCH_SECRET=")
	} else {
		cmd.Env = append(cmd.Env, "TCPUNCH_SECRET_FILE="+secretFile)
	}
	w, err := ready.Attach(cmd)
	if err != nil {
		t.Fatal(err)
	}
	p.ready = w
	t.Cleanup(func() { w.Close() })
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", args, p.stderr.String())
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process outlives d.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%v still running after %v; stderr:\n%s", p.cmd.Args, d, p.stderr.String())
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	p.t.Fatalf("%v: %v", p.cmd.Args, p.err)
	return -1
}

func (p *proc) signal(s syscall.Signal) { p.cmd.Process.Signal(s) }

// waitStderr waits until stderr matches re and returns the first submatch.
func (p *proc) waitStderr(re string, d time.Duration) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.stderr.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.stderr.String()); m != nil {
				return m[len(m)-1]
			}
			p.t.Fatalf("%v exited before printing %q; stderr:\n%s", p.cmd.Args, re, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.t.Fatalf("%v did not print %q within %v; stderr:\n%s", p.cmd.Args, re, d, p.stderr.String())
	return ""
}

// waitReady waits for the ready line of serve (its listening address) or
// listen (its local endpoint, once registered) and returns the address.
func (p *proc) waitReady(d time.Duration) string {
	p.t.Helper()
	return p.waitReadyFields(d)[0]
}

// waitReadyFields waits for the ready line and returns all its fields: the
// address, then for a code-mode listener the one-time code.
func (p *proc) waitReadyFields(d time.Duration) []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fields, err := p.ready.WaitFields(ctx)
	if errors.Is(err, ready.ErrExited) {
		<-p.done
		p.t.Fatalf("%v exited before it was ready (%v); stderr:\n%s", p.cmd.Args, p.err, p.stderr.String())
	}
	if err != nil {
		p.t.Fatalf("%v not ready within %v: %v; stderr:\n%s", p.cmd.Args, d, err, p.stderr.String())
	}
	return fields
}

// serve starts `tcpunch serve` on listen (port 0: an ephemeral one), with
// any further flags, and returns the address it listens on, from its ready
// line.
func serve(t *testing.T, prefix []string, listen string, flags ...string) (string, *proc) {
	t.Helper()
	p := start(t, prefix, nil, io.Discard, append([]string{"serve", "--listen", listen}, flags...)...)
	return p.waitReady(30 * time.Second), p
}

// reportLine returns the --report json line from stderr.
func reportLine(t *testing.T, stderr string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "{") {
			return l
		}
	}
	t.Fatalf("no --report json line in stderr:\n%s", stderr)
	return ""
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// echoUpper is a TCP service behind --forward: it upper-cases what it reads
// until EOF, then half-closes.
func echoUpper(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Serve(t, ln, func(c net.Conn) {
		data, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(data))
		c.(*net.TCPConn).CloseWrite()
	})
	return ln.Addr().String()
}
