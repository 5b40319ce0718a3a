package punch

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// When the optimistic nominee fails, a connection that verified meanwhile
// is nominated with a NOMINATE byte, and only then. "Only then" is an
// order, not a time window: the peer's reader notes whether the nominee
// had been released when the byte arrived.
func TestNominationMovesToSpare(t *testing.T) {
	e := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	p := e.newSession(Session{Role: RoleControlling}, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.ctx = ctx

	first, _ := tcpPair(t)
	spare, peer := tcpPair(t)
	rcFirst, rcSpare := &rawConn{c: first}, &rawConn{c: spare}
	if !p.claim(rcFirst) || p.claim(rcSpare) {
		t.Fatal("claim: want the first connection only")
	}
	var released atomic.Bool
	type read struct {
		b             byte
		err           error
		afterReleased bool
	}
	got := make(chan read, 1)
	go func() {
		peer.SetReadDeadline(time.Now().Add(30 * time.Second)) // only against a hang
		var b [1]byte
		_, err := io.ReadFull(peer, b[:])
		got <- read{b[0], err, released.Load()}
	}()
	res := make(chan verdict, 1)
	go func() { v, _ := p.nominate(rcSpare); res <- v }()
	waitSpares(t, p, 1)
	// The spare is parked: still nothing nominated, nothing won.
	p.mu.Lock()
	nominee, winner := p.nominee, p.winner
	p.mu.Unlock()
	if nominee != rcFirst || winner != nil {
		t.Fatalf("with the spare parked: nominee %p winner %p; want the first connection and no winner", nominee, winner)
	}
	released.Store(true)
	p.release(rcFirst)
	r := <-got
	if r.err != nil || r.b != nominateByte {
		t.Fatalf("peer read %q, %v; want NOMINATE", r.b, r.err)
	}
	if !r.afterReleased {
		t.Fatal("the spare was nominated while the first nomination was outstanding")
	}
	select {
	case <-p.won:
	case <-time.After(10 * time.Second):
		t.Fatal("no winner")
	}
	cancel()
	if v := <-res; v != verdictWon || p.winner != rcSpare {
		t.Fatalf("spare's verdict %v, winner %p; want it to win", v, p.winner)
	}
}

// waitSpares waits until n connections are parked as spares.
func waitSpares(t testing.TB, p *session, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		p.mu.Lock()
		got := len(p.spares)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spares after 30s, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkNominationFallback is how long the move to a spare takes: from
// releasing the failed nominee to the peer reading the spare's NOMINATE
// (fallback-us), over loopback.
func BenchmarkNominationFallback(b *testing.B) {
	e := newEndpoint(b, netip.AddrPortFrom(lo4, 0))
	var total time.Duration
	for b.Loop() {
		p := e.newSession(Session{Role: RoleControlling}, time.Now())
		ctx, cancel := context.WithCancel(context.Background())
		p.ctx = ctx
		first, _ := tcpPair(b)
		spare, peer := tcpPair(b)
		rcFirst, rcSpare := &rawConn{c: first}, &rawConn{c: spare}
		p.claim(rcFirst)
		res := make(chan verdict, 1)
		go func() { v, _ := p.nominate(rcSpare); res <- v }()
		waitSpares(b, p, 1)
		start := time.Now()
		p.release(rcFirst)
		var one [1]byte
		if _, err := io.ReadFull(peer, one[:]); err != nil || one[0] != nominateByte {
			b.Fatalf("peer read %q, %v; want NOMINATE", one, err)
		}
		total += time.Since(start)
		cancel()
		if v := <-res; v != verdictWon {
			b.Fatalf("spare's verdict %v, want won", v)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "fallback-us")
}

// End to end: the controlling side's first connection goes to a silent
// host, so its optimistic nomination is stuck until the verify timeout; the
// real peer's connection, verified meanwhile, must then be nominated.
func TestNominationFallbackEndToEnd(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		silent := server(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		var evA eventLog
		// Hold back the first attempt to the peer so that the silent host
		// takes the nomination.
		delayPeer := func(ev Event) {
			evA.add(ev)
			if ev.Kind == EventAttempt && ev.Addr == b.Addr() && ev.Attempt == 1 && ev.Err == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithVerifyTimeout(500*time.Millisecond), WithEvents(delayPeer))
		// B must not dial A, or A's accepted connection could be first.
		tag := newTag(t)
		res := make(chan punchResult, 1)
		go func() {
			c, err := b.Punch(ctx, Session{Candidates: []netip.AddrPort{refusedAddr(t)}, Role: RoleControlled, Tag: tag})
			res <- punchResult{c, err}
		}()
		ca, err := a.Punch(ctx, Session{Candidates: []netip.AddrPort{silent, b.Addr()}, Role: RoleControlling, Tag: tag})
		if err != nil {
			t.Fatalf("A: %v\n%s", err, &evA)
		}
		defer ca.Close()
		rb := <-res
		if rb.err != nil {
			t.Fatalf("B: %v", rb.err)
		}
		defer rb.conn.Close()
		checkSameConnection(t, ca, rb.conn)
		converse(t, ca, rb.conn)
		if ca.Info().Remote != b.Addr() {
			t.Errorf("A kept %v", ca.Info().Remote)
		}
		t.Logf("A:\n%s", &evA)
	})
}
