package punch

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// An option value that makes no sense is an error naming the option, from
// every entry point, before anything touches the network.
func TestNonsenseOptionsAreErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		opt  Option
		name string
	}{
		{WithAttemptTimeout(0), "WithAttemptTimeout"},
		{WithAttemptTimeout(-time.Second), "WithAttemptTimeout"},
		{WithVerifyTimeout(0), "WithVerifyTimeout"},
		{WithPunchTimeout(-1), "WithPunchTimeout"},
		{WithRetryJitter(-time.Millisecond, time.Millisecond), "WithRetryJitter"},
		{WithRetryJitter(100*time.Millisecond, 10*time.Millisecond), "WithRetryJitter"},
		{WithRelayBudget(0), "WithRelayBudget"},
		{WithRelayBudget(-time.Second), "WithRelayBudget"},
		{WithRelay(RelayMode(7)), "WithRelay"},
		{WithMaxPunches(0), "WithMaxPunches"},
		{WithMaxSYNRate(0, 400), "WithMaxSYNRate"},
		{WithMaxSYNRate(50, -1), "WithMaxSYNRate"},
	} {
		local := netip.AddrPortFrom(lo4, 0)
		if e, err := NewEndpoint(ctx, local, tc.opt); err == nil || !strings.Contains(err.Error(), tc.name) {
			if e != nil {
				e.Close()
			}
			t.Errorf("NewEndpoint with %s: err = %v, want one naming the option", tc.name, err)
		}
		if l, err := Listen(ctx, "127.0.0.1:1", "x", tc.opt); err == nil || !strings.Contains(err.Error(), tc.name) {
			if l != nil {
				l.Close()
			}
			t.Errorf("Listen with %s: err = %v, want one naming the option", tc.name, err)
		}
		if c, err := Dial(ctx, "127.0.0.1:1", "x", tc.opt); err == nil || !strings.Contains(err.Error(), tc.name) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial with %s: err = %v, want one naming the option", tc.name, err)
		}
		_, err := Punch(ctx, local, Session{Role: RoleControlling, Candidates: []netip.AddrPort{refusedAddr(t)}}, tc.opt)
		if pe := asError(t, err); pe.Kind != ErrEndpoint || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("Punch with %s: %v, want Kind ErrEndpoint naming the option", tc.name, err)
		}
	}
	// The values with a documented meaning are accepted.
	for _, opt := range []Option{WithKeepAlive(0), WithKeepAlive(-1), WithRetryJitter(0, 0), WithLogger(nil), WithEvents(nil)} {
		e, err := NewEndpoint(ctx, netip.AddrPortFrom(lo4, 0), opt)
		if err != nil {
			t.Errorf("NewEndpoint: %v", err)
			continue
		}
		e.Close()
	}
}

// Every failure of Punch and Endpoint.Punch is an *Error.
func TestPunchFailuresAreErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	_, err := e.Punch(ctx, Session{Role: 0, Candidates: []netip.AddrPort{refusedAddr(t)}})
	if pe := asError(t, err); pe.Kind != ErrInvalidSession {
		t.Errorf("a session without a role: %v, want Kind ErrInvalidSession", err)
	}

	// The same tag twice at once.
	tag := newTag(t)
	blocked := netip.AddrPortFrom(lo4, 9) // never dialed to completion before ctx ends
	pctx, pcancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() {
		_, err := e.Punch(pctx, Session{Role: RoleControlled, Tag: tag, Candidates: []netip.AddrPort{blocked}})
		first <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		running := e.punches[tag] != nil
		e.mu.Unlock()
		if running || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = e.Punch(ctx, Session{Role: RoleControlled, Tag: tag, Candidates: []netip.AddrPort{blocked}})
	if pe := asError(t, err); pe.Kind != ErrInvalidSession {
		t.Errorf("a second punch with a running tag: %v, want Kind ErrInvalidSession", err)
	}
	pcancel()
	asError(t, <-first)

	// Punch on a port another socket holds without SO_REUSEPORT.
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = Punch(ctx, held.Addr().(*net.TCPAddr).AddrPort(), Session{Role: RoleControlling, Candidates: []netip.AddrPort{refusedAddr(t)}})
	if pe := asError(t, err); pe.Kind != ErrEndpoint || pe.Cause == nil {
		t.Errorf("Punch on a held port: %v, want Kind ErrEndpoint with the listen error as Cause", err)
	}
}

// WithRendezvousOptions reaches the rendezvous client: with a backoff
// longer than the context, a server that drops every connection is tried
// once; with the default backoff, again and again.
func TestWithRendezvousOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepts atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close() // the connection breaks before an answer: retryable
		}
	}()
	defer func() { ln.Close(); <-done }()

	try := func(opts ...Option) int32 {
		accepts.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := Dial(ctx, ln.Addr().String(), "x", append(opts, WithInsecure())...)
		if !errors.Is(err, ErrRendezvous) {
			t.Fatalf("Dial: %v, want ErrRendezvous", err)
		}
		return accepts.Load()
	}
	if n := try(WithRendezvousOptions(rendezvous.WithBackoff(time.Minute, time.Minute))); n != 1 {
		t.Errorf("with a one-minute backoff the server was tried %d times in 2 s, want once", n)
	}
	if n := try(); n < 2 {
		t.Errorf("with the default backoff the server was tried %d times in 2 s, want several", n)
	}
}
