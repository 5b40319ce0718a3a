package punch

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// hostileServer runs a rendezvous server on loopback with opts.
func hostileServer(t *testing.T, opts ...rendezvous.ServerOption) (string, *rendezvous.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rendezvous.NewServer(opts...)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String(), srv
}

// trap is a loopback listener that counts the connections it gets.
func trap(t *testing.T) (netip.AddrPort, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	testnet.Serve(t, ln, func(c net.Conn) { n.Add(1); c.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort(), &n
}

// waitEvent waits until pred holds for some event of log, or fails.
func waitEvent(t *testing.T, log *eventLog, within time.Duration, pred func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		log.mu.Lock()
		for _, ev := range log.evs {
			if pred(ev) {
				log.mu.Unlock()
				return ev
			}
		}
		log.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no matching event within %v; events:\n%v", within, log)
	return Event{}
}

// TestDialerLeavesPunchStops: a dialer that closes right after Connect
// makes the server send a Cancel, and the listener's punch for it stops
// within a second, with no SYN after.
func TestDialerLeavesPunchStops(t *testing.T) {
	addr, srv := hostileServer(t)
	ctx := testCtx(t)
	var log eventLog
	ln, err := Listen(ctx, addr, "svc", WithEvents(log.add), WithPunchTimeout(30*time.Second), WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, ctl, err := rendezvous.Connect(ctx, addr, netip.MustParseAddrPort("127.0.0.1:0"), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, &log, 10*time.Second, func(ev Event) bool { return ev.Kind == EventPeerInfo })
	closed := time.Now()
	ctl.Close()
	ev := waitEvent(t, &log, 10*time.Second, func(ev Event) bool { return ev.Kind == EventFailed })
	if took := ev.Time.Sub(closed); took > time.Second {
		t.Errorf("the punch stopped %v after the dialer left, want within 1 s", took)
	}
	if !errors.Is(ev.Err, ErrPeerLeft) {
		t.Errorf("punch error %v, want ErrPeerLeft", ev.Err)
	}
	before := log.count(EventAttempt, netip.AddrPort{})
	time.Sleep(300 * time.Millisecond)
	if after := log.count(EventAttempt, netip.AddrPort{}); after != before {
		t.Errorf("%d attempt events after the punch stopped", after-before)
	}
	if srv.Stats().Cancels != 1 {
		t.Errorf("server stats %+v: want one Cancel", srv.Stats())
	}
}

// TestBusyListenerRefuses: beyond WithMaxPunches, a dialer is refused at
// once through the server (503), not queued.
func TestBusyListenerRefuses(t *testing.T) {
	addr, srv := hostileServer(t)
	ctx := testCtx(t)
	var log eventLog
	ln, err := Listen(ctx, addr, "svc", WithEvents(log.add), WithMaxPunches(1), WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The first dialer holds its control connection and never punches: the
	// listener's one slot stays taken.
	_, ctl, err := rendezvous.Connect(ctx, addr, netip.MustParseAddrPort("127.0.0.1:0"), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	waitEvent(t, &log, 10*time.Second, func(ev Event) bool { return ev.Kind == EventPeerInfo })

	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = Dial(dctx, addr, "svc", WithInsecure())
	if !errors.Is(err, rendezvous.ErrPeerRefused) || !errors.Is(err, ErrRendezvous) {
		t.Fatalf("second dialer: %v, want the listener's refusal", err)
	}
	var se *rendezvous.PeerRefusedError
	if !errors.As(err, &se) || se.Code != rendezvous.CodeListenerBusy {
		t.Errorf("refusal %v, want code 503", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused after %v: should be at once", took)
	}
	// The listener's event may trail the refusal the dialer already got.
	waitEvent(t, &log, 10*time.Second, func(ev Event) bool { return ev.Kind == EventRefused })
	if log.count(EventRefused, netip.AddrPort{}) != 1 || srv.Stats().Refusals != 1 {
		t.Errorf("refusals: events %d, server %+v", log.count(EventRefused, netip.AddrPort{}), srv.Stats())
	}
}

// TestHostileCandidatesNotDialed: a Connect whose candidates are a
// loopback port, a link-local metadata address and a private address of
// another network: the listener dials none of them. The server runs on
// loopback but is told loopback candidates are not local (as on a real
// deployment); listener and dialer are on different loopback addresses,
// so they are not behind one public address.
func TestHostileCandidatesNotDialed(t *testing.T) {
	addr, srv := hostileServer(t, rendezvous.WithLoopbackCandidates(false))
	ctx := testCtx(t)
	trapAddr, hits := trap(t)
	var log eventLog
	ln, err := Listen(ctx, addr, "svc", WithEvents(log.add), WithLocalAddr(netip.MustParseAddrPort("127.0.0.2:0")), WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bad := []netip.AddrPort{trapAddr, netip.MustParseAddrPort("169.254.169.254:80"), netip.MustParseAddrPort("10.99.0.1:22")}
	pi, ctl, err := rendezvous.Connect(ctx, addr, netip.MustParseAddrPort("127.0.0.1:0"), "svc", bad)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	ev := waitEvent(t, &log, 10*time.Second, func(ev Event) bool { return ev.Kind == EventPeerInfo })
	if len(ev.Candidates) != 1 {
		t.Errorf("listener was handed %v, want only the dialer's observed endpoint", ev.Candidates)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback trap got %d connections", n)
	}
	for _, b := range bad {
		if n := log.count(EventAttempt, b); n != 0 {
			t.Errorf("%v dialed %d times", b, n)
		}
	}
	if srv.Stats().CandidatesDropped != 3 {
		t.Errorf("server stats %+v: want 3 candidates dropped", srv.Stats())
	}
	_ = pi
}

// TestEnginePolicy: the engine withholds the same candidates on its own,
// should a server hand them out.
func TestEnginePolicy(t *testing.T) {
	ctx := testCtx(t)
	trapAddr, hits := trap(t)
	e := newEndpoint(t, netip.MustParseAddrPort("127.0.0.1:0"))
	s := Session{
		Role: RoleControlled, Tag: newTag(t),
		Candidates: []netip.AddrPort{trapAddr, netip.MustParseAddrPort("169.254.169.254:80"), netip.MustParseAddrPort("10.99.0.1:22"), netip.MustParseAddrPort("127.0.0.1:0")},
		policy:     &candPolicy{allowLoopback: false, sameNAT: false},
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := e.Punch(pctx, s)
	if !errors.Is(err, ErrNoCandidates) {
		t.Errorf("punch: %v, want ErrNoCandidates (all withheld)", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback trap got %d connections", n)
	}
	// The policy table itself.
	cases := []struct {
		p    candPolicy
		a    string
		i    int
		want bool
	}{
		{candPolicy{}, "127.0.0.1:22", 1, false},
		{candPolicy{allowLoopback: true}, "127.0.0.1:22", 0, true},
		{candPolicy{sameNAT: true}, "169.254.169.254:80", 1, false},
		{candPolicy{sameNAT: true}, "[fe80::1]:80", 1, false},
		{candPolicy{}, "10.0.0.1:22", 1, false},
		{candPolicy{sameNAT: true}, "10.0.0.1:22", 1, true},
		{candPolicy{}, "10.0.0.1:22", 0, true}, // observed: the server saw it
		{candPolicy{}, "203.0.113.9:22", 1, true},
		{candPolicy{sameNAT: true}, "203.0.113.9:0", 1, false},
		{candPolicy{sameNAT: true}, "224.0.0.1:80", 1, false},
	}
	for _, c := range cases {
		got := c.p.check(netip.MustParseAddrPort(c.a), c.i) == nil
		if got != c.want {
			t.Errorf("%+v.check(%s, %d) = %v, want %v", c.p, c.a, c.i, got, c.want)
		}
	}
}

// TestSYNBudget: a punch at a closed port on loopback, where refusals come
// back at once, keeps to the refusal floor and the SYN rate.
func TestSYNBudget(t *testing.T) {
	ctx := testCtx(t)
	var log eventLog
	e := newEndpoint(t, netip.MustParseAddrPort("127.0.0.1:0"), WithEvents(log.add))
	var cands []netip.AddrPort
	for range 16 {
		cands = append(cands, refusedAddr(t))
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.Punch(pctx, Session{Role: RoleControlling, Tag: newTag(t), Candidates: cands})
	}()
	wg.Wait()
	syns := 0
	log.mu.Lock()
	for _, ev := range log.evs {
		if ev.Kind == EventAttempt && ev.Err == nil {
			syns++
		}
	}
	log.mu.Unlock()
	// 2 s at 50/s, plus the burst of 50.
	if syns > 160 {
		t.Errorf("%d SYNs in 2 s to 16 closed ports, want at most ~150 (50/s and a burst of 50)", syns)
	}
	if syns < 16 {
		t.Errorf("only %d SYNs: every candidate should be tried", syns)
	}
	t.Logf("%d SYNs in 2 s to 16 closed loopback ports", syns)
}

// TestWrongHelloDroppedAfterFirstTry: a candidate that answers with
// something other than our hello (an SSH banner) is not dialed again.
func TestWrongHelloDroppedAfterFirstTry(t *testing.T) {
	ctx := testCtx(t)
	var conns atomic.Int32
	ssh := server(t, func(c net.Conn) {
		conns.Add(1)
		c.Write([]byte("SSH-2.0-OpenSSH_9.6 0123456789abcdef0123456789abcdef\r\n"))
		time.Sleep(200 * time.Millisecond)
		c.Close()
	})
	var log eventLog
	e := newEndpoint(t, netip.MustParseAddrPort("127.0.0.1:0"), WithEvents(log.add))
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := e.Punch(pctx, Session{Role: RoleControlling, Tag: newTag(t), Candidates: []netip.AddrPort{ssh}})
	if err == nil {
		t.Fatal("punched a connection to an SSH banner")
	}
	time.Sleep(100 * time.Millisecond)
	if n := conns.Load(); n != 1 {
		t.Errorf("the impostor got %d connections, want 1; events:\n%v", n, &log)
	}
}
