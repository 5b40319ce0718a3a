package punch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// relayTokens pairs two throwaway control connections at the server to
// get a relay token both legs may use (all from 127.0.0.1).
func relayTokens(t *testing.T, server string) rendezvous.RelayToken {
	t.Helper()
	ctx := testCtx(t)
	any := netip.MustParseAddrPort("127.0.0.1:0")
	name := fmt.Sprintf("tokens-%x", newTag(t))
	reg, err := rendezvous.Register(ctx, server, any, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	pi, ctl, err := rendezvous.Connect(ctx, server, any, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	if _, err := reg.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if pi.RelayToken.IsZero() {
		t.Fatal("the server gave no relay token")
	}
	return pi.RelayToken
}

// TestRelayFallback: with candidates that never answer (a NAT that drops
// everything), RelayAuto relays after the budget on both sides, through
// the same hello and nomination as a direct connection; RelayNever fails.
func TestRelayFallback(t *testing.T) {
	server, _ := rendezvousAt(t, "127.0.0.1:0")
	const budget = 300 * time.Millisecond
	t.Run("auto", func(t *testing.T) {
		token := relayTokens(t, server)
		hole := testnet.RequireBlackhole(t)
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithRelayBudget(budget))
		b := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithRelayBudget(budget))
		ca, cb := relayedPair(t, a, b, []netip.AddrPort{hole}, &Relay{Server: server, Token: token})
		for _, c := range []*Conn{ca, cb} {
			i := c.Info()
			if i.Path != PathRelay || i.Method != MethodRelay {
				t.Errorf("info %+v: want path relay, method relay", i)
			}
			if i.Elapsed < budget || i.Elapsed > budget+5*time.Second {
				t.Errorf("relayed after %v with a budget of %v", i.Elapsed, budget)
			}
		}
		converse(t, ca, cb)
		halfClose(t, ca, cb)
	})
	t.Run("never", func(t *testing.T) {
		token := relayTokens(t, server)
		hole := testnet.RequireBlackhole(t)
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithRelay(RelayNever))
		ctx, cancel := context.WithTimeout(testCtx(t), 2*budget+time.Second)
		defer cancel()
		_, err := a.Punch(ctx, Session{Candidates: []netip.AddrPort{hole}, Role: RoleControlling, Tag: newTag(t),
			Relay: &Relay{Server: server, Token: token}})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("RelayNever without a direct path: %v, want ErrTimeout", err)
		}
	})
}

// TestRelayAlways: Listen and Dial with RelayAlways relay even where a
// direct connection is trivial (loopback), both report the path as relay
// to the server, and the secure link runs over the relayed stream as over
// a direct one, in every trust mode: the handshake (its first flight
// pipelined with the nomination), the data both ways, and Finish's
// end-of-stream confirmation.
func TestRelayAlways(t *testing.T) {
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	code, err := GenerateCode()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		auth string
		name string
		opt  Option
	}{
		{AuthSecret, "always", WithSecret(secret)},
		{AuthCode, "", WithCode(code)},
		{AuthInsecure, "always", WithInsecure()},
	} {
		t.Run(m.auth, func(t *testing.T) { relayAlways(t, m.auth, m.name, m.opt) })
	}
}

func relayAlways(t *testing.T, auth, name string, trust Option) {
	rec := &reports{}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rendezvous.NewServer(rendezvous.WithTracer(rec))
	go srv.Serve(sln)
	t.Cleanup(func() { srv.Close() })
	server := sln.Addr().String()
	ctx := testCtx(t)
	ln, err := Listen(ctx, server, name, trust, WithRelay(RelayAlways))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var cb *Conn
	wg.Add(1)
	go func() { defer wg.Done(); cb = acceptConn(t, ln) }()
	ca, err := Dial(ctx, server, name, trust, WithRelay(RelayAlways))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	wg.Wait()
	if cb == nil {
		t.Fatal("no connection accepted")
	}
	defer cb.Close()
	for _, c := range []*Conn{ca, cb} {
		i := c.Info()
		if i.Path != PathRelay || i.Auth != auth {
			t.Errorf("info %+v: want path relay, auth %s", i, auth)
		}
		if secured := auth != AuthInsecure; secured != (i.Handshake > 0) {
			t.Errorf("info %+v: handshake %v for auth %s", i, i.Handshake, auth)
		}
		if n := sumAttempts(i); n != 0 {
			t.Errorf("RelayAlways made %d direct attempts", n)
		}
		// The path stays hidden: io.Copy must not reach the relay leg
		// (ReadFrom goes through the link: converse below uses it).
		if _, ok := any(c).(io.WriterTo); ok {
			t.Error("a relayed Conn is an io.WriterTo")
		}
		if _, ok := any(c).(syscall.Conn); ok {
			t.Error("a relayed Conn is a syscall.Conn")
		}
	}
	converse(t, ca, cb)
	// Both directions end, and each side learns that all of its bytes
	// (the conversation's 12) were read by the peer.
	done := make(chan error, 1)
	go func() {
		if _, err := io.Copy(io.Discard, cb); err != nil {
			done <- err
			return
		}
		_, err := cb.Finish(ctx)
		done <- err
	}()
	if err := ca.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, ca); err != nil {
		t.Fatal(err)
	}
	d, err := ca.Finish(ctx)
	if err != nil || !d.Complete() || d.Sent != 12 || d.Received != 12 {
		t.Errorf("dialer's Finish over the relay: %+v, %v", d, err)
	}
	if err := <-done; err != nil {
		t.Errorf("listener's Finish over the relay: %v", err)
	}
	var got []rendezvous.PunchReport
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = rec.snapshot()
	}
	if len(got) != 2 {
		t.Fatalf("reports = %+v, want the listener's and the dialer's", got)
	}
	for _, r := range got {
		if r.Path != rendezvous.PathRelay || r.Method != rendezvous.PunchNone || r.TimeToConnect <= 0 {
			t.Errorf("report %+v: want path relay, method none, a time", r)
		}
	}
}

// TestDirectPreferred: where a direct path exists, RelayAuto takes it.
func TestDirectPreferred(t *testing.T) {
	server, _ := rendezvousAt(t, "127.0.0.1:0")
	ctx := testCtx(t)
	secret, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(ctx, server, "direct", WithSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ca, err := Dial(ctx, server, "direct", WithSecret(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb := acceptConn(t, ln)
	defer cb.Close()
	if ca.Info().Path != PathDirect || cb.Info().Path != PathDirect {
		t.Fatalf("paths %v and %v, want direct", ca.Info().Path, cb.Info().Path)
	}
	converse(t, ca, cb)
}

func sumAttempts(i Info) int {
	n := 0
	for _, v := range i.Attempts {
		n += v
	}
	return n
}

func relayedPair(t *testing.T, a, b *Endpoint, cands []netip.AddrPort, r *Relay) (*Conn, *Conn) {
	t.Helper()
	ctx := testCtx(t)
	tag := newTag(t)
	var ra, rb punchResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ra.conn, ra.err = a.Punch(ctx, Session{Candidates: cands, Role: RoleControlling, Tag: tag, Relay: r})
	}()
	go func() {
		defer wg.Done()
		rb.conn, rb.err = b.Punch(ctx, Session{Candidates: cands, Role: RoleControlled, Tag: tag, Relay: r})
	}()
	wg.Wait()
	if ra.conn != nil {
		t.Cleanup(func() { ra.conn.Close() })
	}
	if rb.conn != nil {
		t.Cleanup(func() { rb.conn.Close() })
	}
	if ra.err != nil || rb.err != nil {
		t.Fatalf("punch: controlling: %v; controlled: %v", ra.err, rb.err)
	}
	return ra.conn, rb.conn
}

// halfClose: A's CloseWrite is B's EOF, and B's bytes still reach A.
func halfClose(t *testing.T, ca, cb *Conn) {
	t.Helper()
	if err := ca.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	cb.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, cb); n != 0 || err != nil {
		t.Fatalf("B after A's CloseWrite: %d bytes, %v; want a clean EOF", n, err)
	}
	go func() { cb.Write([]byte("after")); cb.CloseWrite() }()
	ca.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(ca)
	if err != nil || string(got) != "after" {
		t.Fatalf("A read %q, %v", got, err)
	}
}

// TestSessionRelayActsOnPrediction: a pair DirectPossible rules out relays
// at once with RelayAuto, and fails with ErrNoDirectPath when relaying is
// off or the server gave no token; a pair that may meet keeps the budget.
func TestSessionRelayActsOnPrediction(t *testing.T) {
	sym := rendezvous.NATClass{Mapping: rendezvous.MappingAddressPortDependent}
	eim := rendezvous.NATClass{Mapping: rendezvous.MappingEndpointIndependent, Filtering: rendezvous.FilteringSilent}
	var token rendezvous.RelayToken
	token[0] = 1
	for _, c := range []struct {
		name        string
		local, peer rendezvous.NATClass
		token       rendezvous.RelayToken
		mode        RelayMode
		noDirect    bool // the relay is used at once
		failure     bool // ErrNoDirectPath
	}{
		{"symmetric pair, auto", sym, sym, token, RelayAuto, true, false},
		{"symmetric×silent, auto", sym, eim, token, RelayAuto, true, false},
		{"symmetric pair, never", sym, sym, token, RelayNever, false, true},
		{"symmetric pair, no token", sym, sym, rendezvous.RelayToken{}, RelayAuto, false, true},
		{"possible pair, auto", eim, eim, token, RelayAuto, false, false},
		{"not measured, auto", rendezvous.NATClass{}, sym, token, RelayAuto, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := newConfig([]Option{WithRelay(c.mode)})
			if err != nil {
				t.Fatal(err)
			}
			pi := rendezvous.PeerInfo{RelayToken: c.token, LocalClass: c.local, Class: c.peer}
			r, err := sessionRelay(&cfg, "server:1", pi)
			if c.failure {
				if pe := asError(t, err); pe.Kind != ErrNoDirectPath || !errors.Is(err, ErrNoDirectPath) || r != nil {
					t.Fatalf("relay %+v, err %v: want ErrNoDirectPath", r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r != nil && r.NoDirect != ""; got != c.noDirect {
				t.Errorf("relay %+v: relay at once = %v, want %v", r, got, c.noDirect)
			}
		})
	}
}

// TestRelayAtOnce: a session whose relay says no direct path can exist
// relays without waiting for the budget and makes no direct attempt, even
// with a candidate that would connect.
func TestRelayAtOnce(t *testing.T) {
	server, _ := rendezvousAt(t, "127.0.0.1:0")
	const budget = time.Minute // never waited out: the test would time out first
	token := relayTokens(t, server)
	var events []Event
	var mu sync.Mutex
	rec := WithEvents(func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() })
	a := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithRelayBudget(budget), rec)
	b := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithRelayBudget(budget))
	r := &Relay{Server: server, Token: token, NoDirect: "both NATs are symmetric"}
	ca, cb := relayedPair(t, a, b, []netip.AddrPort{b.Addr(), a.Addr()}, r)
	for _, c := range []*Conn{ca, cb} {
		i := c.Info()
		if i.Path != PathRelay || sumAttempts(i) != 0 || i.Elapsed >= budget {
			t.Errorf("info %+v: want path relay at once, no direct attempt", i)
		}
	}
	converse(t, ca, cb)
	mu.Lock()
	defer mu.Unlock()
	said := false
	for _, ev := range events {
		said = said || ev.Kind == EventRelaying && strings.Contains(ev.Detail, "both NATs are symmetric") && strings.Contains(ev.Detail, "at once")
	}
	if !said {
		t.Errorf("events %v: none says it relays at once and why", events)
	}
}
