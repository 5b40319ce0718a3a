package punch

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
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
// is nominated with a NOMINATE byte, and only then.
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
	res := make(chan verdict, 1)
	go func() { v, _ := p.nominate(rcSpare); res <- v }()
	for {
		p.mu.Lock()
		n := len(p.spares)
		p.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := peer.Read(make([]byte, 1)); n != 0 {
		t.Fatal("the spare was nominated while the first nomination was outstanding")
	}
	p.release(rcFirst)
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(peer, b[:]); err != nil || b[0] != nominateByte {
		t.Fatalf("peer read %q, %v; want NOMINATE", b, err)
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
