package rendezvous

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// dyingServer accepts one connection on a fresh loopback port and stops
// listening, as a server that crashes mid-registration would. The accepted
// connection is handed to the test, which closes it when it likes.
func dyingServer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close()
		if err == nil {
			io.ReadAtLeast(c, make([]byte, 20), 20) // the request's header arrived
			ch <- c
		}
		close(ch)
	}()
	t.Cleanup(func() { ln.Close() })
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

// Refusals are answers, not outages: they are not retried.
func TestRefusalsNotRetried(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	reg, err := Register(ctx, addr, reusedPort(t), "taken", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// A backoff longer than the context: a retry would end in the
	// context's error instead of the server's refusal.
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	slow := WithBackoff(time.Minute, time.Minute)
	if _, err := Register(short, addr, reusedPort(t), "taken", nil, slow); !errors.Is(err, ErrNameTaken) {
		t.Errorf("second Register of a held name: %v, want ErrNameTaken", err)
	}
	if _, _, err := Connect(short, addr, anyLocal, "nobody", nil, slow); !errors.Is(err, ErrUnknownName) {
		t.Errorf("Connect to an unknown name: %v, want ErrUnknownName", err)
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
