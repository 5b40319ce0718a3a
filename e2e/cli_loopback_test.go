//go:build linux

package e2e_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// stream is n deterministic pseudo-random bytes.
func stream(seed byte, n int64) io.Reader {
	var s [32]byte
	s[0] = seed
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func digest(r io.Reader) [32]byte {
	h := sha256.New()
	io.Copy(h, r)
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// hashWriter hashes what a process writes to stdout.
type hashWriter struct {
	mu sync.Mutex
	h  interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func newHashWriter() *hashWriter { return &hashWriter{h: sha256.New()} }

func (w *hashWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += int64(len(p))
	return w.h.Write(p)
}

func (w *hashWriter) sum() ([32]byte, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d [32]byte
	copy(d[:], w.h.Sum(nil))
	return d, w.n
}

type report struct {
	Local        string  `json:"local"`
	Remote       string  `json:"remote"`
	Method       string  `json:"method"`
	ElapsedMS    float64 `json:"elapsed_ms"`
	Attempts     int     `json:"attempts"`
	SelfConnects int     `json:"self_connects"`
	Path         string  `json:"path"`
	Auth         string  `json:"auth"`
	HandshakeMS  float64 `json:"handshake_ms"`
}

func parseReport(t *testing.T, stderr string) report {
	t.Helper()
	var r report
	line := reportLine(t, stderr)
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("--report line %q: %v", line, err)
	}
	return r
}

// checkMethodPair checks what the engine guarantees about one connection
// seen from both ends: the methods agree (accept on one side is connect on
// the other, a simultaneous open is one on both), and a side that dialed
// it (connect, simultaneous-open) sent at least one SYN. A side that
// accepted may have sent none: the peer's SYN can arrive before its first
// dial, so only the pair's total is at least one.
func checkMethodPair(t *testing.T, a, b report) {
	t.Helper()
	agree := map[string]string{"accept": "connect", "connect": "accept", "simultaneous-open": "simultaneous-open"}
	if want, ok := agree[a.Method]; !ok || b.Method != want {
		t.Errorf("methods %q and %q: not two ends of one connection", a.Method, b.Method)
	}
	for _, r := range []report{a, b} {
		if r.Method != "accept" && r.Attempts < 1 {
			t.Errorf("report %+v: method %s dialed, but attempts = %d", r, r.Method, r.Attempts)
		}
	}
	if a.Attempts+b.Attempts < 1 {
		t.Errorf("reports %+v and %+v: no side sent a SYN", a, b)
	}
}

// TestPipeBothWays is nc between two machines: each side's stdin arrives
// byte-exact on the other's stdout, EOF half-closes, both exit 0.
func TestPipeBothWays(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	const size = 8 << 20
	lOut, dOut := newHashWriter(), newHashWriter()
	l := start(t, nil, stream(1, size), lOut, "listen", "-r", rv, "--report", "json", "pipe-both")
	l.waitReady(30 * time.Second)
	d := start(t, nil, stream(2, size), dOut, "dial", "-r", rv, "--report", "json", "pipe-both")

	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial exit %d; stderr:\n%s", code, d.stderr.String())
	}
	if code := l.wait(60 * time.Second); code != 0 {
		t.Fatalf("listen exit %d; stderr:\n%s", code, l.stderr.String())
	}
	if got, n := lOut.sum(); got != digest(stream(2, size)) {
		t.Errorf("listener received %d bytes that differ from the %d the dialer sent", n, size)
	}
	if got, n := dOut.sum(); got != digest(stream(1, size)) {
		t.Errorf("dialer received %d bytes that differ from the %d the listener sent", n, size)
	}
	lr, dr := parseReport(t, l.stderr.String()), parseReport(t, d.stderr.String())
	if lr.Local != dr.Remote || lr.Remote != dr.Local {
		t.Errorf("reports disagree on the connection: listener %s<->%s, dialer %s<->%s", lr.Local, lr.Remote, dr.Local, dr.Remote)
	}
	if dr.Remote == rv || lr.Remote == rv {
		t.Errorf("a peer's remote is the rendezvous server %s", rv)
	}
	checkMethodPair(t, lr, dr)
	for _, r := range []report{lr, dr} {
		if r.ElapsedMS <= 0 || r.SelfConnects != 0 {
			t.Errorf("report %+v: want elapsed > 0, no self-connects", r)
		}
	}
	if out := d.stderr.String(); !strings.Contains(out, "connected to") {
		t.Errorf("dial printed no progress on stderr:\n%s", out)
	}
}

// TestPipeOneGiB pushes 1 GiB one way through the binary: the sha256 must
// match.
func TestPipeOneGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer; run without -short")
	}
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	const size = 1 << 30
	out := newHashWriter()
	l := start(t, nil, strings.NewReader(""), out, "listen", "-r", rv, "gib")
	l.waitReady(30 * time.Second)
	d := start(t, nil, stream(3, size), io.Discard, "dial", "-r", rv, "gib")
	if code := d.wait(5 * time.Minute); code != 0 {
		t.Fatalf("dial exit %d", code)
	}
	if code := l.wait(time.Minute); code != 0 {
		t.Fatalf("listen exit %d", code)
	}
	if got, n := out.sum(); got != digest(stream(3, size)) {
		t.Fatalf("received %d bytes, sha256 differs from the 1 GiB sent", n)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"dial", "somename"},                            // no rendezvous
		{"dial", "-r", "127.0.0.1:1"},                   // no name
		{"listen", "-r", "127.0.0.1:1", "--bogus", "x"}, // unknown flag
		{"dial", "-r", "127.0.0.1:1", "--report", "xml", "n"},
		{"dial", "n", "-r", "127.0.0.1:1", "--report", "xml"}, // flags after NAME are parsed too
		{"dial", "-r", "127.0.0.1:1", "--", "n", "-v"},        // after --, -v is a second NAME
		{"frobnicate"}, // no such subcommand
		{"frobnicate", "-r", "127.0.0.1:1"},
		{"listen", "n", "-r", "127.0.0.1:1", "--max-punches", "0"}, // nonsense limits, flags after NAME
		{"serve", "--listen", "127.0.0.1:0", "--connect-rate", "-1:5"},
		{"serve", "--listen", "127.0.0.1:0", "--register-rate", "inf:5"},
		{"serve", "--listen", "127.0.0.1:0", "--name-connect-rate", "10:0"},
		{"serve", "--listen", "127.0.0.1:0", "--source-prefix", "33,64"},
		{"serve", "--listen", "127.0.0.1:0", "--unknown-name-rate", "fast"},
	} {
		p := start(t, nil, nil, io.Discard, args...)
		if code := p.wait(30 * time.Second); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr:\n%s", args, code, p.stderr.String())
		}
	}
}

// A --rendezvous no retry could make work is a usage error at once, in one
// line, not --timeout of retries and exit 4.
func TestMalformedRendezvousExit2(t *testing.T) {
	t.Parallel()
	for _, rv := range []string{"foo", "h:99999", ":3478", "rv:", "h:0"} {
		for _, cmd := range []string{"dial", "listen"} {
			began := time.Now()
			p := start(t, nil, nil, io.Discard, cmd, "-r", rv, "--timeout", "60s", "n")
			if code := p.wait(30 * time.Second); code != 2 {
				t.Errorf("%s -r %q: exit %d, want 2; stderr:\n%s", cmd, rv, code, p.stderr.String())
			}
			out := strings.TrimSpace(p.stderr.String())
			if strings.Contains(out, "\n") || !strings.HasPrefix(out, "tcpunch: --rendezvous "+strconv.Quote(rv)+": ") {
				t.Errorf("%s -r %q: want one line naming --rendezvous, got:\n%s", cmd, rv, out)
			}
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("%s -r %q: took %v: it retried", cmd, rv, took)
			}
		}
	}
}

// Flags go before or after NAME, as with ssh and nc; -- ends the flags; a
// --exec value with dashes in it stays one value.
func TestFlagsAfterName(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	// Flags after NAME, the --exec value full of dashes.
	l := start(t, nil, nil, io.Discard, "listen", "flags-after", "--exec", "sed -e s/^/got:/ -e s/-/+/g", "-r", rv, "--report", "json")
	l.waitReady(30 * time.Second)
	for _, args := range [][]string{
		{"dial", "-r", rv, "--report", "json", "flags-after"},       // flags first
		{"dial", "flags-after", "-r", rv, "--report", "json"},       // flags after NAME
		{"dial", "--report=json", "flags-after", "-r=" + rv},        // inline values
		{"dial", "-r", rv, "--report", "json", "--", "flags-after"}, // --
	} {
		var out syncBuffer
		d := start(t, nil, strings.NewReader("a-b\n"), &out, args...)
		if code := d.wait(60 * time.Second); code != 0 {
			t.Fatalf("%q: exit %d; stderr:\n%s", args, code, d.stderr.String())
		}
		if out.String() != "got:a+b\n" {
			t.Errorf("%q: got %q from the listener's child, want %q", args, out.String(), "got:a+b\n")
		}
		parseReport(t, d.stderr.String()) // --report json was parsed wherever it stood
	}
	// The listener's own --report json, given after NAME, took effect too.
	parseReport(t, l.stderr.String())

	// A name that starts with a dash needs --.
	l2 := start(t, nil, strings.NewReader("dashed\n"), io.Discard, "listen", "-r", rv, "--", "-dashed")
	l2.waitReady(30 * time.Second)
	var out syncBuffer
	d := start(t, nil, strings.NewReader(""), &out, "dial", "-r", rv, "--", "-dashed")
	if code := d.wait(60 * time.Second); code != 0 || out.String() != "dashed\n" {
		t.Errorf("dial -- -dashed: exit %d, got %q; stderr:\n%s", code, out.String(), d.stderr.String())
	}
}

// Two tcpunch processes on one host with the same --port to the same
// server: the second is told why it cannot connect, not to check its
// network.
func TestSamePortSameServer(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	held, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	held.Close()
	first := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--port", port, "first")
	first.waitReady(30 * time.Second)
	second := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--port", port, "--timeout", "3s", "second")
	if code := second.wait(30 * time.Second); code != 4 {
		t.Fatalf("second listener: exit %d, want 4; stderr:\n%s", code, second.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(second.stderr.String()), "\n")
	want := "tcpunch: local port " + port + " already has a connection to the rendezvous server at " + rv +
		": another tcpunch on this host with the same --port"
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) {
		t.Errorf("last line %q, want %q…", last, want)
	}
}

// A failing --exec child whose stderr ends mid-line: tcpunch's line saying
// so is a line of its own, ended by a newline.
func TestExecFailureLine(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	l := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--exec", "cat >/dev/null; printf oops >&2; exit 3", "execfail")
	l.waitReady(30 * time.Second)
	d := start(t, nil, strings.NewReader("x"), io.Discard, "dial", "-r", rv, "execfail")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial: exit %d; stderr:\n%s", code, d.stderr.String())
	}
	want := "oops\ntcpunch: connection from "
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.stderr.String(), "exit status 3\n") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := l.stderr.String(); !strings.Contains(got, want) || !strings.Contains(got, `running "cat >/dev/null; printf oops >&2; exit 3": exit status 3`+"\n") {
		t.Errorf("listener stderr lacks %q and a failure line ending in a newline:\n%q", want, got)
	}
}

func TestUnknownNameExit4OneLine(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--insecure"}, "tcpunch: no listener named \"nobody-here\" at " + rv + ": start `tcpunch listen -r " + rv + " nobody-here` on the other side first"},
		// With a secret the server sees only the derived name: the line says
		// the secret may differ.
		{nil, "tcpunch: no listener for \"nobody-here\" with this secret at " + rv + ": nobody listens as \"nobody-here\", or its secret differs"},
	} {
		d := start(t, nil, nil, io.Discard, append(append([]string{"dial", "-r", rv}, tc.args...), "nobody-here")...)
		if code := d.wait(30 * time.Second); code != 4 {
			t.Fatalf("%v: exit %d, want 4; stderr:\n%s", tc.args, code, d.stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(d.stderr.String()), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, tc.want) {
			t.Errorf("%v: last stderr line %q: want %q…", tc.args, last, tc.want)
		}
	}
}

// A server that is not there: listen and dial retry for --timeout, then
// exit 4 with one line that says what to check.
func TestRendezvousUnreachableExit4(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	for _, cmd := range []string{"dial", "listen"} {
		p := start(t, nil, nil, io.Discard, cmd, "-r", addr, "--timeout", "2s", "x")
		if code := p.wait(30 * time.Second); code != 4 {
			t.Fatalf("%s: exit %d, want 4; stderr:\n%s", cmd, code, p.stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
		last := lines[len(lines)-1]
		want := "tcpunch: cannot reach the rendezvous server at " + addr + ": connection refused (retried for 2s)"
		if !strings.HasPrefix(last, want) {
			t.Errorf("%s: last stderr line %q, want %q…", cmd, last, want)
		}
		if !strings.Contains(p.stderr.String(), "retrying") {
			t.Errorf("%s: no word of the retries on stderr:\n%s", cmd, p.stderr.String())
		}
	}
}

// A --port another program holds: exit 1 and one line that says so.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "0.0.0.0:0") // no SO_REUSEPORT: nobody may share it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	rv, _ := serve(t, nil, "127.0.0.1:0")
	for _, cmd := range []string{"listen", "dial"} {
		p := start(t, nil, nil, io.Discard, cmd, "-r", rv, "--port", port, "--timeout", "5s", "x")
		if code := p.wait(30 * time.Second); code != 1 {
			t.Errorf("%s --port %s (held): exit %d, want 1; stderr:\n%s", cmd, port, code, p.stderr.String())
		}
		want := "tcpunch: cannot listen on local port " + port + ": another program holds it"
		if got := strings.TrimSpace(p.stderr.String()); !strings.HasPrefix(got, want) {
			t.Errorf("%s: stderr %q, want one line starting %q", cmd, got, want)
		}
	}
}

// A listener started before its rendezvous server (boot order, a server
// being restarted) waits for it and registers once it is up.
func TestListenBeforeServer(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	rv := ln.Addr().String()
	ln.Close()
	l := start(t, nil, strings.NewReader("early bird\n"), io.Discard, "listen", "-r", rv, "--timeout", "60s", "early")
	l.waitStderr(`retrying`, 30*time.Second)
	serve(t, nil, rv)
	l.waitReady(60 * time.Second)
	var out syncBuffer
	d := start(t, nil, strings.NewReader(""), &out, "dial", "-r", rv, "early")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial: exit %d; stderr:\n%s", code, d.stderr.String())
	}
	if out.String() != "early bird\n" {
		t.Errorf("dial got %q", out.String())
	}
}

// TestForwardAndLocal is ssh -L through tcpunch: local clients of
// `dial --local` reach the service behind `listen --forward`, several at
// once, each with its own punch.
func TestForwardAndLocal(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	svc := echoUpper(t)
	l := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--forward", svc, "fwd")
	l.waitReady(30 * time.Second)

	d := start(t, nil, nil, io.Discard, "dial", "-r", rv, "--local", "127.0.0.1:0", "fwd")
	local := d.waitReady(30 * time.Second) // the port the kernel picked

	const clients = 4
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", local, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			msg := fmt.Sprintf("client %d says hello", i)
			c.Write([]byte(msg))
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- err
				return
			}
			if string(got) != strings.ToUpper(msg) {
				errs <- fmt.Errorf("client %d got %q", i, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Services stop cleanly on SIGTERM/SIGINT: exit 0.
	d.signal(syscall.SIGINT)
	l.signal(syscall.SIGTERM)
	if code := d.wait(30 * time.Second); code != 0 {
		t.Errorf("dial --local after SIGINT: exit %d, want 0", code)
	}
	if code := l.wait(30 * time.Second); code != 0 {
		t.Errorf("listen --forward after SIGTERM: exit %d, want 0", code)
	}
}

// TestExecGetsOnlyTheConnection lists the child's descriptors: 0 and 1 are
// the pipes the listener relays over the link (never the socket, which
// carries TLS and the confirmation frames), 2 is our stderr, and nothing
// else of ours is there (not the listener, not the rendezvous connection).
func TestExecGetsOnlyTheConnection(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	l := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--exec",
		`exec find /proc/self/fd -mindepth 1 -printf '%f %l\n'`, "execfd")
	l.waitReady(30 * time.Second)
	var out syncBuffer
	d := start(t, nil, strings.NewReader(""), &out, "dial", "-r", rv, "execfd")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial exit %d", code)
	}
	fds := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		fd, target, _ := strings.Cut(line, " ")
		fds[fd] = target
	}
	// find itself holds the directory it lists open: that fd is no socket or pipe.
	if !strings.HasPrefix(fds["0"], "pipe:") || !strings.HasPrefix(fds["1"], "pipe:") || fds["0"] == fds["1"] {
		t.Errorf("child fds 0 and 1 = %q, %q: want two pipes", fds["0"], fds["1"])
	}
	for fd, target := range fds {
		if fd == "0" || fd == "1" || fd == "2" {
			continue
		}
		if strings.HasPrefix(target, "socket:") || strings.HasPrefix(target, "pipe:") || strings.HasPrefix(target, "anon_inode:") {
			t.Errorf("child inherited fd %s -> %s", fd, target)
		}
	}
	l.signal(syscall.SIGTERM)
	if code := l.wait(30 * time.Second); code != 0 {
		t.Errorf("listen --exec after SIGTERM: exit %d", code)
	}
}

// TestInterruptWhilePunching: SIGINT during a punch that cannot succeed
// ends the dial promptly with exit 130.
func TestInterruptWhilePunching(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	// A listener that registers but whose process is stopped: it never punches.
	l := start(t, nil, nil, io.Discard, "listen", "-r", rv, "frozen")
	l.waitReady(30 * time.Second)
	l.signal(syscall.SIGSTOP)
	defer l.signal(syscall.SIGCONT)
	d := start(t, nil, nil, io.Discard, "dial", "-r", rv, "--timeout", "60s", "frozen")
	time.Sleep(500 * time.Millisecond)
	d.signal(syscall.SIGINT)
	if code := d.wait(30 * time.Second); code != 130 {
		t.Errorf("dial after SIGINT: exit %d, want 130; stderr:\n%s", code, d.stderr.String())
	}
	// The real time the punch ran, not --timeout.
	lines := strings.Split(strings.TrimSpace(d.stderr.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^tcpunch: interrupted after (\S+) while punching to "frozen"`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("dial after SIGINT: last line %q, want 'tcpunch: interrupted after D while punching to \"frozen\"…'", last)
	}
	if took, err := time.ParseDuration(m[1]); err != nil || took > 20*time.Second {
		t.Errorf("dial after SIGINT says it ran %s: want the real time (about 0.5s), not --timeout", m[1])
	}
}

func TestDemoLoopback(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	p := start(t, nil, nil, &out, "demo", "--loopback")
	if code := p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("demo --loopback: exit %d\n%s", code, out.String())
	}
	checkDemo(t, out.String())
	if !strings.Contains(out.String(), "loopback") {
		t.Errorf("demo --loopback does not say it ran on loopback:\n%s", out.String())
	}
}

// TestDemoThroughNAT is `sudo tcpunch demo` as a user runs it: two real NATs.
func TestDemoThroughNAT(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	var out syncBuffer
	p := start(t, nil, nil, &out, "demo", "--delay", "10ms")
	if code := p.wait(2 * time.Minute); code != 0 {
		t.Fatalf("demo: exit %d\n%s", code, out.String())
	}
	checkDemo(t, out.String())
	if !strings.Contains(out.String(), "NAT at 203.0.113.") {
		t.Errorf("demo as root did not use the NAT lab:\n%s", out.String())
	}
}

// TestDemoScenarios: `demo --scenario` builds any lab scenario; one without
// a direct path ends with exit 3 and says it was expected.
func TestDemoScenarios(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	t.Run("rst×rst", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		p := start(t, nil, nil, &out, "demo", "--scenario", "rstxrst", "--delay", "10ms")
		if code := p.wait(2 * time.Minute); code != 0 {
			t.Fatalf("demo: exit %d\n%s", code, out.String())
		}
		checkDemo(t, out.String())
		for _, want := range []string{"scenario rst×rst", "RST-answering NAT at 203.0.113.", "attempt 1 to 203.0.113."} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("demo output lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("symmetric×drop", func(t *testing.T) {
		t.Parallel()
		var out syncBuffer
		p := start(t, nil, nil, &out, "demo", "--scenario", "symmetricxdrop")
		if code := p.wait(2 * time.Minute); code != 3 {
			t.Fatalf("demo: exit %d, want 3 (no direct path)\n%s", code, out.String())
		}
		// The demo's server has a second address, so the peers measured
		// their NATs and the failure names the one in the way.
		if !strings.Contains(out.String(), "NAT is symmetric (measured:") {
			t.Errorf("the timeline does not name the symmetric NAT:\n%s", out.String())
		}
		if !strings.Contains(p.stderr.String(), "no direct path (as expected for symmetric×drop)") {
			t.Errorf("stderr: %q, want the expected-failure line", p.stderr.String())
		}
	})
	t.Run("unknown", func(t *testing.T) {
		p := start(t, nil, nil, io.Discard, "demo", "--scenario", "nope")
		if code := p.wait(30 * time.Second); code != 2 || !strings.Contains(p.stderr.String(), "drop×drop") {
			t.Errorf("unknown scenario: exit %d, stderr %q; want 2 and the list of scenarios", code, p.stderr.String())
		}
	})
}

func checkDemo(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{"peer a received: hello from peer b", "peer b received: hello from peer a", "Direct connection", "connected to"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestStunCommand(t *testing.T) {
	t.Parallel()
	rv1, _ := serve(t, nil, "127.0.0.1:0")
	rv2, _ := serve(t, nil, "127.0.0.1:0")

	var one syncBuffer
	p := start(t, nil, nil, &one, "stun", "--port", "0", rv1)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("stun: exit %d", code)
	}
	mapped := strings.TrimSpace(one.String())
	if host, _, err := net.SplitHostPort(mapped); err != nil || host != "127.0.0.1" {
		t.Errorf("stun printed %q, want 127.0.0.1:PORT", mapped)
	}

	var two syncBuffer
	p = start(t, nil, nil, &two, "stun", rv1, rv2)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("stun with two servers: exit %d", code)
	}
	if !strings.Contains(two.String(), "endpoint-independent") {
		t.Errorf("loopback has no NAT, so the mapping cannot change; got:\n%s", two.String())
	}

	// A server that is not there: exit 4, one line.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p = start(t, nil, nil, io.Discard, "stun", dead)
	if code := p.wait(30 * time.Second); code != 4 {
		t.Errorf("stun to a dead server: exit %d, want 4", code)
	}
}

// TestRendezvousFromEnvironment: TCPUNCH_RENDEZVOUS stands in for -r.
func TestRendezvousFromEnvironment(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	withEnv := []string{"env", "TCPUNCH_RENDEZVOUS=" + rv}
	l := start(t, withEnv, strings.NewReader("from env listener\n"), io.Discard, "listen", "envname")
	l.waitReady(30 * time.Second)
	var out syncBuffer
	d := start(t, withEnv, strings.NewReader(""), &out, "dial", "envname")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial with TCPUNCH_RENDEZVOUS: exit %d", code)
	}
	if out.String() != "from env listener\n" {
		t.Errorf("dial got %q", out.String())
	}
}

// TestDialExec: the dialing side hands the connection to a child too.
func TestDialExec(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	var got syncBuffer
	l := start(t, nil, strings.NewReader("line one\nline two\n"), &got, "listen", "-r", rv, "dialexec")
	l.waitReady(30 * time.Second)
	// The child numbers the lines it reads and writes them back.
	d := start(t, nil, nil, io.Discard, "dial", "-r", rv, "--exec", "cat -n", "dialexec")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial --exec: exit %d", code)
	}
	if code := l.wait(60 * time.Second); code != 0 {
		t.Fatalf("listen: exit %d", code)
	}
	if f := strings.Fields(got.String()); len(f) != 6 || f[0] != "1" || f[3] != "2" || f[5] != "two" {
		t.Errorf("listener got %q from the dialer's child, want the two lines numbered", got.String())
	}
}

// TestExecChildrenStopWithListener: SIGTERM to `listen --exec` reaches the
// children it started, and the command exits 0.
func TestExecChildrenStopWithListener(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	pidFile := t.TempDir() + "/child.pid"
	l := start(t, nil, nil, io.Discard, "listen", "-r", rv, "--exec", "echo $$ > "+pidFile+"; exec sleep 300", "kids")
	l.waitReady(30 * time.Second)
	d := start(t, nil, nil, io.Discard, "dial", "-r", rv, "kids")
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil {
			fmt.Sscan(string(b), &pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the --exec child never started")
	}
	l.signal(syscall.SIGTERM)
	if code := l.wait(30 * time.Second); code != 0 {
		t.Errorf("listen --exec after SIGTERM: exit %d, want 0", code)
	}
	// The child is gone (a zombie would have been reaped by the listener).
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("--exec child %d still running after the listener stopped", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// The dialer's connection ended with the child.
	if code := d.wait(30 * time.Second); code != 0 {
		t.Errorf("dial after the peer's child ended: exit %d", code)
	}
}

// TestServeStopsGracefully: SIGTERM shuts the server down, exit 0.
func TestServeStopsGracefully(t *testing.T) {
	t.Parallel()
	_, p := serve(t, nil, "127.0.0.1:0")
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("serve after SIGTERM: exit %d, want 0", code)
	}
	if !strings.Contains(p.stderr.String(), "shut") {
		t.Errorf("serve logged no shutdown:\n%s", p.stderr.String())
	}
}

// TestListenSurvivesServerRestart: `tcpunch listen` says when it loses the
// rendezvous, registers again when the server is back, and is dialable.
func TestListenSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	rv, srv := serve(t, nil, "127.0.0.1:0")
	l := start(t, nil, strings.NewReader("still here\n"), io.Discard, "listen", "-r", rv, "phoenix")
	l.waitReady(30 * time.Second)

	srv.signal(syscall.SIGTERM)
	if code := srv.wait(30 * time.Second); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
	l.waitStderr(`reconnecting`, 30*time.Second)
	serve(t, nil, rv) // the same address
	l.waitStderr(`registered again`, 60*time.Second)

	var out syncBuffer
	d := start(t, nil, strings.NewReader(""), &out, "dial", "-r", rv, "phoenix")
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("dial after the restart: exit %d", code)
	}
	if out.String() != "still here\n" {
		t.Errorf("dial got %q", out.String())
	}
}

// TestServeJSONLogs: --log-format json makes every log line a JSON object.
func TestServeJSONLogs(t *testing.T) {
	t.Parallel()
	p := start(t, nil, nil, io.Discard, "serve", "--listen", "127.0.0.1:0", "--log-format", "json")
	p.waitStderr(`"msg":"listening"`, 30*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("serve: exit %d", code)
	}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}
