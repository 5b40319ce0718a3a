package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() { c, err := ln.Accept(); acc <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPipeBothWaysWithHalfClose(t *testing.T) {
	ctx := testContext(t)
	a, b := tcpPair(t)
	sent := make([]byte, 4<<20)
	rand.Read(sent)
	reply := []byte("reply after EOF\n")

	// The far side reads everything until our half-close, then answers and
	// closes: the answer must still reach out.
	far := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(b)
		b.Write(reply)
		b.CloseWrite()
		far <- got
	}()
	var out bytes.Buffer
	if err := Pipe(ctx, a, bytes.NewReader(sent), &out); err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	if got := <-far; sha256.Sum256(got) != sha256.Sum256(sent) {
		t.Errorf("far side got %d bytes, want the %d sent, byte-exact", len(got), len(sent))
	}
	if !bytes.Equal(out.Bytes(), reply) {
		t.Errorf("out = %q, want %q", out.Bytes(), reply)
	}
}

func TestPipeEndsWhenContextEnds(t *testing.T) {
	a, _ := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe() // stdin that never ends
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- Pipe(ctx, a, r, io.Discard) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Pipe returned nil after its context was cancelled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pipe did not return after cancel")
	}
}

func TestProxyRelaysAndHalfCloses(t *testing.T) {
	ctx := testContext(t)
	clientSide, proxyIn := tcpPair(t)
	proxyOut, serverSide := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- Proxy(ctx, proxyIn, proxyOut) }()

	// An echo server that upper-cases until EOF.
	go func() {
		data, _ := io.ReadAll(serverSide)
		serverSide.Write(bytes.ToUpper(data))
		serverSide.CloseWrite()
	}()
	clientSide.Write([]byte("hello through the proxy"))
	clientSide.CloseWrite()
	got, err := io.ReadAll(clientSide)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "HELLO THROUGH THE PROXY" {
		t.Errorf("got %q", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Proxy: %v", err)
	}
}

func TestExecChildOwnsOnlyTheConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("lists /proc/self/fd")
	}
	ctx := testContext(t)
	a, b := tcpPair(t)
	// Descriptors of ours that must not leak into the child.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	done := make(chan error, 1)
	go func() { done <- Exec(ctx, a, "ls /proc/self/fd; cat", os.Stderr) }()
	b.Write([]byte("echoed\n"))
	b.CloseWrite()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Exec: %v", err)
	}
	lines := strings.Fields(string(got))
	// ls lists 0 1 2 and the descriptor it opened for /proc/self/fd.
	if len(lines) != 5 || lines[0] != "0" || lines[1] != "1" || lines[2] != "2" || lines[4] != "echoed" {
		t.Errorf("child saw descriptors and output %q; want exactly 0 1 2, ls's own, then the echo", lines)
	}
}

func TestExecReportsChildFailure(t *testing.T) {
	ctx := testContext(t)
	a, b := tcpPair(t)
	defer b.Close()
	err := Exec(ctx, a, "exit 3", io.Discard)
	if err == nil {
		t.Fatal("Exec returned nil for a child that exited 3")
	}
	// The connection ends with the child.
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, rerr := b.Read(make([]byte, 1)); rerr != io.EOF {
		t.Errorf("peer read after child exit = %v, want EOF", rerr)
	}
}

// A failing child whose last words on stderr did not end the line: the
// line is ended, so the caller's failure line stands on its own.
func TestExecEndsTheChildsLastLine(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"printf oops >&2; exit 3", "oops\n"},
		{"echo oops >&2; exit 3", "oops\n"},
		{"exit 3", ""},
		{"printf fine >&2", "fine"}, // a child that succeeded is left as it wrote
	} {
		a, b := tcpPair(t)
		var stderr bytes.Buffer
		Exec(testContext(t), a, tc.script, &stderr)
		b.Close()
		if stderr.String() != tc.want {
			t.Errorf("%q: stderr %q, want %q", tc.script, stderr.String(), tc.want)
		}
	}
}
