package rendezvous

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// dyingServer accepts one connection on a fresh loopback port and stops
// listening, as a server that crashes mid-registration would. The accepted
// connection is handed to the test, which closes it when it likes. The
// accepting goroutine ends before the test does.
func dyingServer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		// The request's header arrived; the deadline bounds the wait for
		// a client that never sends one.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAtLeast(c, make([]byte, 20), 20); err != nil {
			c.Close()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		ch <- c
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String(), ch
}

// relisten serves a new server on addr, which a dead one just freed.
func relisten(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			serveOn(t, ln)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The server dies while a listener's first Register waits for its answer,
// and comes back on the same address: Register retries and succeeds.
func TestRegisterRetriesAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	addr, accepted := dyingServer(t)
	type result struct {
		reg *Registration
		err error
	}
	done := make(chan result, 1)
	go func() {
		reg, err := Register(ctx, addr, reusedPort(t), "lazarus", nil, WithBackoff(20*time.Millisecond, 200*time.Millisecond), WithLogger(testLogger(t)))
		done <- result{reg, err}
	}()
	c := <-accepted
	if c == nil {
		t.Fatal("the first server never saw the registration")
	}
	c.Close() // the crash, mid-registration
	relisten(t, ctx, addr)
	r := <-done
	if r.err != nil {
		t.Fatalf("Register across a restart: %v", r.err)
	}
	defer r.reg.Close()
	if !r.reg.Observed().IsValid() {
		t.Error("no observed endpoint after the retried registration")
	}
	pi, closer, err := Connect(ctx, addr, anyLocal, "lazarus", nil)
	if err != nil {
		t.Fatalf("connect to the re-registered name: %v", err)
	}
	defer closer.Close()
	got, err := r.reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != pi.Tag {
		t.Errorf("listener tag %x, dialer tag %x", got.Tag, pi.Tag)
	}
}

// The server dies while a dialer's Connect waits for its answer; once it
// is back and the listener has registered again, the retried Connect pairs.
func TestConnectRetriesAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	addr, accepted := dyingServer(t)
	type result struct {
		pi  PeerInfo
		c   io.Closer
		err error
	}
	done := make(chan result, 1)
	go func() {
		pi, c, err := Connect(ctx, addr, anyLocal, "lazarus", nil, WithBackoff(20*time.Millisecond, 200*time.Millisecond), WithLogger(testLogger(t)))
		done <- result{pi, c, err}
	}()
	c := <-accepted
	if c == nil {
		t.Fatal("the first server never saw the connect")
	}
	relisten(t, ctx, addr)
	reg, err := Register(ctx, addr, reusedPort(t), "lazarus", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c.Close() // the crash, mid-connect
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect across a restart: %v", r.err)
	}
	defer r.c.Close()
	got, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != r.pi.Tag {
		t.Errorf("listener tag %x, dialer tag %x", got.Tag, r.pi.Tag)
	}
}

// countingListener counts the connections a server accepts: each try of
// a client is a new connection.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// Refusals are answers, not outages: they are not retried. The backoff is
// short enough that a retry would come many times within the context, and
// each would be a connection the server counts.
func TestRefusalsNotRetried(t *testing.T) {
	ctx := testCtx(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	serveOn(t, ln)
	addr := ln.Addr().String()
	reg, err := Register(ctx, addr, reusedPort(t), "taken", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	quick := WithBackoff(10*time.Millisecond, 20*time.Millisecond)
	tries := func(what string, op func(context.Context) error, want error) {
		t.Helper()
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		before := ln.n.Load()
		if err := op(short); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
		if n := ln.n.Load() - before; n != 1 {
			t.Errorf("%s: %d connections to the server, want 1 (no retry)", what, n)
		}
	}
	tries("second Register of a held name", func(short context.Context) error {
		_, err := Register(short, addr, reusedPort(t), "taken", nil, quick)
		return err
	}, ErrNameTaken)
	tries("Connect to an unknown name", func(short context.Context) error {
		_, _, err := Connect(short, addr, anyLocal, "nobody", nil, quick)
		return err
	}, ErrUnknownName)
	// A server address that cannot parse fails at once, whatever the
	// context allows.
	for _, bad := range []string{"127.0.0.1", "127.0.0.1:notaport", "[::1:3478", "127.0.0.1:99999"} {
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		began := time.Now()
		_, err := Register(short, bad, anyLocal, "bad-address", nil, quick)
		cancel()
		if err == nil || time.Since(began) > time.Second {
			t.Errorf("Register at %q: %v after %v; want an error at once", bad, err, time.Since(began))
		}
	}
	for _, code := range []int{CodeShuttingDown, CodeCapacity, CodeServerError} {
		if !retryable(&ServerError{Code: code}) {
			t.Errorf("code %d not retried", code)
		}
	}
	for _, code := range []int{CodeBadRequest, CodeUnknownName, CodeNameTaken, CodeTooManyConns} {
		if retryable(&ServerError{Code: code}) {
			t.Errorf("code %d retried", code)
		}
	}
}
