package punch

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

func TestPunchLoopbackIPv4(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		if a.Addr().Port() == 0 || a.Addr().Addr() != lo4 {
			t.Fatalf("Addr() = %v, want 127.0.0.1 and the real port", a.Addr())
		}
		ca, cb := mustPair(ctx, t, a, b, []netip.AddrPort{b.Addr()}, []netip.AddrPort{a.Addr()})
		checkSameConnection(t, ca, cb)
		ia := ca.Info()
		if ia.Local != a.Addr() || ia.Remote != b.Addr() {
			t.Errorf("A's Info: %v→%v, want %v→%v", ia.Local, ia.Remote, a.Addr(), b.Addr())
		}
		// A side that won by accepting B's SYN may not have sent its own
		// yet: only a dialed connection implies an attempt.
		if len(ia.Attempts) != 1 || ia.Attempts[b.Addr()] < 1 && ia.Method != MethodAccept {
			t.Errorf("A's Attempts = %v (method %v), want one entry for %v, with an attempt unless it accepted", ia.Attempts, ia.Method, b.Addr())
		}
		if ia.Elapsed <= 0 || ia.SelfConnects != 0 {
			t.Errorf("A's Info: Elapsed %v, SelfConnects %d", ia.Elapsed, ia.SelfConnects)
		}
		// Punched connections outlive their Endpoint.
		a.Close()
		b.Close()
		converse(t, ca, cb)
		ca.Close()
		cb.Close()
	})
}

func TestPunchIPv6Loopback(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no ::1 on this machine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newEndpoint(t, netip.AddrPortFrom(lo6, 0))
	b := newEndpoint(t, netip.AddrPortFrom(lo6, 0))
	ca, cb := mustPair(ctx, t, a, b, []netip.AddrPort{b.Addr()}, []netip.AddrPort{a.Addr()})
	checkSameConnection(t, ca, cb)
	if r := ca.Info().Remote; r != b.Addr() {
		t.Errorf("remote %v, want %v", r, b.Addr())
	}
	converse(t, ca, cb)
}

// Dual-stack endpoints with several candidates each, IPv4 and IPv6, most of
// which verify: both sides must keep the same single connection.
func TestPunchDualStackSeveralCandidates(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no ::1 on this machine")
	}
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := range 10 {
			var evA, evB eventLog
			a := newEndpoint(t, netip.AddrPort{}, WithEvents(evA.add))
			b := newEndpoint(t, netip.MustParseAddrPort("0.0.0.0:0"), WithEvents(evB.add))
			candsA := []netip.AddrPort{withPort(lo4, b), withPort(lo6, b)}
			candsB := []netip.AddrPort{withPort(lo6, a), withPort(lo4, a)}
			if runtime.GOOS == "linux" { // all of 127/8 is loopback only on Linux
				candsA = append(candsA, withPort(netip.MustParseAddr("127.0.0.2"), b))
			}
			ca, cb := mustPair(ctx, t, a, b, candsA, candsB)
			checkSameConnection(t, ca, cb)
			converse(t, ca, cb)
			t.Logf("round %d: %v %v→%v, verified A %d B %d", i, ca.Info().Method, ca.Info().Local, ca.Info().Remote,
				evA.count(EventVerified, netip.AddrPort{}), evB.count(EventVerified, netip.AddrPort{}))
			ca.Close()
			cb.Close()
			a.Close()
			b.Close()
		}
	})
}

// One Endpoint serves several punches at once; accepted connections reach
// the right one by their session tag.
func TestEndpointServesConcurrentPunches(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		const n = 4
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			d := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
			wg.Add(1)
			go func() {
				defer wg.Done()
				cd, cl := mustPair(ctx, t, d, l, []netip.AddrPort{l.Addr()}, []netip.AddrPort{d.Addr()})
				if cl.Info().Remote != d.Addr() {
					errs <- errors.New("listener's connection goes to " + cl.Info().Remote.String() + ", want " + d.Addr().String())
				}
				checkSameConnection(t, cd, cl)
				converse(t, cd, cl)
				cd.Close()
				cl.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// The controlled side may start its Punch after the controlling side's
// connection has already been accepted: the connection waits for it.
func TestControlledStartsLate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	tag := newTag(t)
	res := make(chan punchResult, 1)
	go func() {
		c, err := a.Punch(ctx, Session{Candidates: []netip.AddrPort{b.Addr()}, Role: RoleControlling, Tag: tag})
		res <- punchResult{c, err}
	}()
	time.Sleep(300 * time.Millisecond)
	cb, err := b.Punch(ctx, Session{Candidates: []netip.AddrPort{a.Addr()}, Role: RoleControlled, Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	ra := <-res
	if ra.err != nil {
		t.Fatal(ra.err)
	}
	defer ra.conn.Close()
	checkSameConnection(t, ra.conn, cb)
	converse(t, ra.conn, cb)
}

func TestUnknownTagRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithVerifyTimeout(300*time.Millisecond))
	_, err := Punch(ctx, netip.AddrPortFrom(lo4, 0),
		Session{Candidates: []netip.AddrPort{b.Addr()}, Role: RoleControlling, Tag: newTag(t)})
	if !errors.Is(err, ErrPeerRejected) {
		t.Fatalf("err = %v, want ErrPeerRejected", err)
	}
	pe := asError(t, err)
	var re *rejectedError
	if len(pe.Candidates) != 1 || !errors.As(pe.Candidates[0].Err, &re) || re.reason != reasonSession {
		t.Errorf("candidate errors %+v, want the peer's reject for the unknown session", pe.Candidates)
	}
}

func TestSameRoleRejected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	tag := newTag(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, pair := range [][2]*Endpoint{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = pair[0].Punch(ctx, Session{Candidates: []netip.AddrPort{pair[1].Addr()}, Role: RoleControlled, Tag: tag})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrPeerRejected) && !errors.Is(err, ErrNoCandidates) {
			t.Errorf("side %d: err = %v, want a rejection", i, err)
		}
	}
}

func TestSelfCandidateNeverDialed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ev eventLog
	e := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithEvents(ev.add))
	_, err := e.Punch(ctx, Session{Candidates: []netip.AddrPort{e.Addr()}, Role: RoleControlling, Tag: newTag(t)})
	if !errors.Is(err, ErrOnlySelfConnects) {
		t.Fatalf("err = %v, want ErrOnlySelfConnects", err)
	}
	if pe := asError(t, err); pe.Candidates[0].Attempts != 0 {
		t.Errorf("own endpoint was dialed %d times", pe.Candidates[0].Attempts)
	}
	if ev.count(EventSelfConnect, e.Addr()) != 1 {
		t.Errorf("want one self-connect event; events:\n%s", &ev)
	}

	// Listening on the unspecified address, every loopback and interface
	// address with our port is us.
	u := newEndpoint(t, netip.MustParseAddrPort("0.0.0.0:0"))
	cands := []netip.AddrPort{withPort(lo4, u), withPort(netip.MustParseAddr("127.0.0.9"), u), withPort(lo6, u),
		netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), u.Addr().Port())}
	if addrs, err := interfaceAddrs(); err == nil && len(addrs) > 0 {
		cands = append(cands, netip.AddrPortFrom(addrs[0], u.Addr().Port()))
	}
	_, err = u.Punch(ctx, Session{Candidates: cands, Role: RoleControlled, Tag: newTag(t)})
	if !errors.Is(err, ErrOnlySelfConnects) {
		t.Fatalf("unspecified endpoint: err = %v, want ErrOnlySelfConnects", err)
	}
	for _, c := range asError(t, err).Candidates {
		if c.Attempts != 0 {
			t.Errorf("%v was dialed %d times", c.Addr, c.Attempts)
		}
	}
}

// With the address guard before dialing switched off, the socket is made to
// meet itself; the guard after connecting must catch it.
func TestSelfConnectCaughtAfterDial(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var ev eventLog
		e := newEndpoint(t, netip.AddrPortFrom(lo4, 0), withSelfDial(), WithEvents(ev.add))
		c, err := e.Punch(ctx, Session{Candidates: []netip.AddrPort{e.Addr()}, Role: RoleControlling, Tag: newTag(t)})
		if c != nil {
			c.Close()
			t.Fatalf("a self-connection was returned: %v", c.Info())
		}
		if !errors.Is(err, ErrOnlySelfConnects) {
			t.Fatalf("err = %v, want ErrOnlySelfConnects; events:\n%s", err, &ev)
		}
		if pe := asError(t, err); pe.Candidates[0].Attempts < 1 || !errors.Is(pe.Candidates[0].Err, errSelfConnect) {
			t.Errorf("candidate error %+v, want a self-connect after dialing", pe.Candidates[0])
		}
		if ev.count(EventSelfConnect, netip.AddrPort{}) < 1 {
			t.Errorf("no self-connect event; events:\n%s", &ev)
		}
		if runtime.GOOS == "linux" && !strings.Contains(ev.String(), "local and remote address are equal") {
			// Linux hands a socket in SYN_SENT its own SYN: the address
			// guard, not only the hello's instance id, must see it.
			t.Errorf("the address guard did not fire; events:\n%s", &ev)
		}
		e.Close()
	})
}

// A connection that slips past the address guard (here a mirror that echoes
// our hello back, as a hairpinning NAT would) is caught by the instance id.
func TestInstanceIDCatchesSelf(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mirror := server(t, func(c net.Conn) { io.Copy(c, c) })
	_, err := Punch(ctx, netip.AddrPortFrom(lo4, 0),
		Session{Candidates: []netip.AddrPort{mirror}, Role: RoleControlled, Tag: newTag(t)})
	if !errors.Is(err, ErrOnlySelfConnects) {
		t.Fatalf("err = %v, want ErrOnlySelfConnects", err)
	}
}

// Other hosts at candidate addresses (garbage, a tcpunch peer of another
// session, a silent service) are refused; the real peer still wins.
func TestImpostorsRefused(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		garbage := server(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		rejectReasons := make(chan rejectReason, 10)
		wrongTag := server(t, func(c net.Conn) {
			// Speaks our protocol, for another session.
			h := hello{flags: 0, role: RoleControlled, tag: [16]byte{1, 2, 3}}
			h.instance[0] = 42
			if _, err := readFrame(c); err != nil {
				return
			}
			c.Write(h.marshal())
			_, err := readFrame(c)
			var re *rejectedError
			if errors.As(err, &re) {
				rejectReasons <- re.reason
			}
		})
		silent := server(t, func(c net.Conn) { io.Copy(io.Discard, c) })

		var evA eventLog
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithEvents(evA.add), WithVerifyTimeout(time.Second))
		b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		tag := newTag(t)
		resA := make(chan punchResult, 1)
		go func() {
			c, err := a.Punch(ctx, Session{Candidates: []netip.AddrPort{garbage, wrongTag, silent, b.Addr()}, Role: RoleControlling, Tag: tag})
			resA <- punchResult{c, err}
		}()
		// The real peer joins only once both impostors have been refused,
		// so that the refusals are certain, not a race with the win. (B's
		// endpoint holds A's early connections until B's punch registers.)
		select {
		case r := <-rejectReasons:
			if r != reasonSession {
				t.Errorf("the other session's peer was rejected for %v, want %v", r, reasonSession)
			}
		case <-ctx.Done():
			t.Fatal("the peer of another session was never rejected")
		}
		for evA.count(EventRejected, garbage) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("the garbage server was never refused; events of A:\n%s", &evA)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cb, err := b.Punch(ctx, Session{Candidates: []netip.AddrPort{a.Addr()}, Role: RoleControlled, Tag: tag})
		if err != nil {
			t.Fatalf("the real peer: %v", err)
		}
		ra := <-resA
		if ra.err != nil {
			t.Fatalf("A among impostors: %v", ra.err)
		}
		ca := ra.conn
		checkSameConnection(t, ca, cb)
		if ca.Info().Remote != b.Addr() {
			t.Fatalf("won against %v, want the peer %v", ca.Info().Remote, b.Addr())
		}
		converse(t, ca, cb)
		t.Logf("events of A:\n%s", &evA)
		ca.Close()
		cb.Close()
		a.Close()
		b.Close()
	})
}

// Only impostors: the punch fails fast and says why per candidate.
func TestOnlyImpostorsFail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	garbage := server(t, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n"); io.Copy(io.Discard, c) })
	_, err := Punch(ctx, netip.AddrPortFrom(lo4, 0),
		Session{Candidates: []netip.AddrPort{garbage}, Role: RoleControlling, Tag: newTag(t)})
	if !errors.Is(err, ErrNoCandidates) {
		t.Fatalf("err = %v, want ErrNoCandidates", err)
	}
	var ve *verifyError
	if pe := asError(t, err); !errors.As(pe.Candidates[0].Err, &ve) {
		t.Errorf("candidate error %v, want a verification failure", pe.Candidates[0].Err)
	}
}

func TestNoCandidates(t *testing.T) {
	ctx := context.Background()
	e := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
	for _, cands := range [][]netip.AddrPort{nil, {{}}, {netip.AddrPortFrom(lo6, 1)}, {netip.MustParseAddrPort("0.0.0.0:80")}} {
		_, err := e.Punch(ctx, Session{Candidates: cands, Role: RoleControlling, Tag: newTag(t)})
		if !errors.Is(err, ErrNoCandidates) {
			t.Errorf("candidates %v: err = %v, want ErrNoCandidates", cands, err)
		}
	}
	if _, err := e.Punch(ctx, Session{Candidates: []netip.AddrPort{netip.AddrPortFrom(lo4, 1)}}); err == nil {
		t.Error("a session without a role was accepted")
	}
}

// Cancellation while attempts are refused, in SYN_SENT (Linux) and in the
// middle of a hello: Punch returns promptly and leaves nothing behind.
func TestCancelMidPunchLeaksNothing(t *testing.T) {
	cands := []netip.AddrPort{refusedAddr(t), server(t, func(c net.Conn) { io.Copy(io.Discard, c) })}
	if bh, ok := testnet.Blackhole(t); ok {
		cands = append(cands, bh)
	}
	check := leakCheck(t)
	for _, role := range []Role{RoleControlling, RoleControlled} {
		e := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		c, err := e.Punch(ctx, Session{Candidates: cands, Role: role, Tag: newTag(t)})
		if c != nil {
			t.Fatal("a connection was punched to nobody")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Punch returned %v after cancellation", took)
		}
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrTimeout and context.Canceled", err)
		}
		pe := asError(t, err)
		if len(pe.Candidates) != len(cands) || pe.Candidates[0].Attempts < 1 || pe.Candidates[0].Err == nil {
			t.Errorf("candidate errors %+v", pe.Candidates)
		}
		cancel()
		e.Close()
	}
	check()
}

func TestDeadlineExceeded(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := Punch(ctx, netip.AddrPortFrom(lo4, 0),
			Session{Candidates: []netip.AddrPort{refusedAddr(t)}, Role: RoleControlling, Tag: newTag(t)})
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout and context.DeadlineExceeded", err)
		}
		if pe := asError(t, err); pe.Candidates[0].Attempts < 2 {
			t.Errorf("refused candidate dialed %d times in 200ms, want retries", pe.Candidates[0].Attempts)
		}
	})
}

// Closing the Endpoint ends the punches running on it.
func TestCloseEndsPunch(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		e := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		time.AfterFunc(200*time.Millisecond, func() { e.Close() })
		_, err := e.Punch(context.Background(), Session{Candidates: []netip.AddrPort{refusedAddr(t)}, Role: RoleControlled, Tag: newTag(t)})
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("err = %v, want ErrTimeout and net.ErrClosed", err)
		}
		if _, err := e.Punch(context.Background(), Session{Candidates: []netip.AddrPort{refusedAddr(t)}, Role: RoleControlled, Tag: newTag(t)}); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Punch on a closed Endpoint: %v", err)
		}
	})
}

func TestErrorMatching(t *testing.T) {
	err := error(&Error{Kind: ErrTimeout, Cause: context.DeadlineExceeded,
		Candidates: []CandidateError{{Addr: netip.AddrPortFrom(lo4, 9), Attempts: 3, Err: errors.New("refused")}}})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPeerRejected) {
		t.Errorf("errors.Is does not follow Kind and Cause: %v", err)
	}
	if !errors.Is(&rejectedError{reason: reasonRole}, ErrPeerRejected) {
		t.Error("a peer's reject is not ErrPeerRejected")
	}
	t.Log(err)
}
