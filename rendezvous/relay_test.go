package rendezvous

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// relayPair pairs a listener and a dialer at addr and returns both peer
// infos (with the same relay token).
func relayPair(t *testing.T, addr, name string) (dialer, listener PeerInfo) {
	t.Helper()
	ctx := testCtx(t)
	reg, err := Register(ctx, addr, anyLocal, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	pi, ctl, err := Connect(ctx, addr, anyLocal, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	lpi, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pi.RelayToken.IsZero() || pi.RelayToken != lpi.RelayToken {
		t.Fatalf("relay tokens: dialer %v, listener %v: want one, the same", pi.RelayToken, lpi.RelayToken)
	}
	return pi, lpi
}

// joinLegs opens both legs at once.
func joinLegs(t *testing.T, addr string, token RelayToken) (d, l *RelayConn) {
	t.Helper()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var errD, errL error
	wg.Add(2)
	go func() { defer wg.Done(); d, errD = DialRelay(ctx, addr, token, RoleControlling) }()
	go func() { defer wg.Done(); l, errL = DialRelay(ctx, addr, token, RoleControlled) }()
	wg.Wait()
	if errD != nil || errL != nil {
		t.Fatalf("DialRelay: dialer %v, listener %v", errD, errL)
	}
	t.Cleanup(func() { d.Close(); l.Close() })
	return d, l
}

// relayTracer keeps what the Tracer is told about relay sessions.
type relayTracer struct {
	NopTracer
	mu      sync.Mutex
	started int
	ended   []RelaySession
}

func (r *relayTracer) RelayStarted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
}

func (r *relayTracer) RelayEnded(s RelaySession) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = append(r.ended, s)
}

// waitEnded waits until one session started and ended and returns it.
func (r *relayTracer) waitEnded(t *testing.T) RelaySession {
	t.Helper()
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.ended) > 0 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started != 1 || len(r.ended) != 1 {
		t.Fatalf("tracer: %d sessions started, %d ended; want 1 and 1", r.started, len(r.ended))
	}
	return r.ended[0]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestRelayBothWays: 4 MiB each way cross the relay byte-exact, and each
// side's CloseWrite reaches the other as EOF while its own direction
// still runs.
func TestRelayBothWays(t *testing.T) {
	tr := &relayTracer{}
	_, addr := startServer(t, WithTracer(tr))
	pi, _ := relayPair(t, addr, "relay-both")
	d, l := joinLegs(t, addr, pi.RelayToken)
	const size = 4 << 20
	dd, ld := randomBytes(size), randomBytes(size)
	var wg sync.WaitGroup
	var gotAtL, gotAtD []byte
	var errL, errD error
	wg.Add(4)
	go func() { defer wg.Done(); d.Write(dd); d.CloseWrite() }()
	go func() { defer wg.Done(); l.Write(ld); l.CloseWrite() }()
	go func() { defer wg.Done(); gotAtL, errL = io.ReadAll(l) }()
	go func() { defer wg.Done(); gotAtD, errD = io.ReadAll(d) }()
	wg.Wait()
	if errL != nil || errD != nil {
		t.Fatalf("reading: listener %v, dialer %v", errL, errD)
	}
	if sha256.Sum256(gotAtL) != sha256.Sum256(dd) || sha256.Sum256(gotAtD) != sha256.Sum256(ld) {
		t.Fatalf("bytes differ: listener got %d, dialer got %d of %d", len(gotAtL), len(gotAtD), size)
	}
	// The tracer is told of the session, its bytes each way and that the
	// peers closed it.
	if s := tr.waitEnded(t); s.Reason != RelayEndClosed || s.BytesUp != size || s.BytesDown != size || s.Duration <= 0 {
		t.Errorf("tracer: %+v, want %d bytes each way, reason closed", s, size)
	}
}

// TestRelayOutlivesWriteTimeout: the write timeout bounds the server's
// answers, not the session: bytes written after it passed still cross
// both ways (the answer's deadline was left on the legs, and every
// relayed session broke once it passed).
func TestRelayOutlivesWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	_, addr := startServer(t, WithWriteTimeout(timeout))
	pi, _ := relayPair(t, addr, "relay-long")
	d, l := joinLegs(t, addr, pi.RelayToken)
	time.Sleep(3 * timeout)
	for _, p := range []struct {
		name     string
		from, to *RelayConn
	}{{"dialer → listener", d, l}, {"listener → dialer", l, d}} {
		want := randomBytes(1 << 20)
		go func() { _, _ = p.from.Write(want) }()
		got := make([]byte, len(want))
		_ = p.to.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(p.to, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s, %v after the session began: %v (bytes equal: %v)", p.name, 3*timeout, err, bytes.Equal(got, want))
		}
	}
}

// TestRelayTokenOneSessionOnly: a third leg with a valid token is refused
// while the session runs, and the token is refused after the session.
func TestRelayTokenOneSessionOnly(t *testing.T) {
	srv, addr := startServer(t)
	pi, _ := relayPair(t, addr, "relay-once")
	d, l := joinLegs(t, addr, pi.RelayToken)
	for _, role := range []Role{RoleControlling, RoleControlled} {
		_, err := DialRelay(testCtx(t), addr, pi.RelayToken, role)
		var se *ServerError
		if !errors.Is(err, ErrRelayRefused) || !errors.As(err, &se) || se.Code != CodeForbidden {
			t.Fatalf("third leg as %v: %v, want a 403 refusal", role, err)
		}
	}
	// The session still works.
	d.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(l, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("after the refused third legs: %q %v", buf, err)
	}
	d.Close()
	l.Close()
	waitFor(t, func() bool { _, active := srv.relay.stats(); return active == 0 })
	_, err := DialRelay(testCtx(t), addr, pi.RelayToken, RoleControlling)
	if !errors.Is(err, ErrRelayRefused) {
		t.Fatalf("replayed token: %v, want refused", err)
	}
}

// TestRelayTokenExpires: an unused token is refused after its TTL, and a
// first leg waits no longer than that for its partner.
func TestRelayTokenExpires(t *testing.T) {
	_, addr := startServer(t, WithRelayTokenTTL(300*time.Millisecond))
	pi, _ := relayPair(t, addr, "relay-expire")
	start := time.Now()
	_, err := DialRelay(testCtx(t), addr, pi.RelayToken, RoleControlling)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeRelayTimeout {
		t.Fatalf("a leg whose peer never comes: %v, want 408", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the lone leg waited %v", el)
	}
	pi2, _ := relayPair(t, addr, "relay-expire2")
	time.Sleep(400 * time.Millisecond)
	_, err = DialRelay(testCtx(t), addr, pi2.RelayToken, RoleControlling)
	if !errors.As(err, &se) || se.Code != CodeForbidden {
		t.Fatalf("an expired token: %v, want 403", err)
	}
}

// TestRelayLimitsSayWhy: a session ended by a limit ends with the reason
// on both sides.
func TestRelayLimitsSayWhy(t *testing.T) {
	cases := []struct {
		name  string
		opt   ServerOption
		code  int
		send  bool
		trace RelayEnd
	}{
		{"bytes", WithRelayMaxBytes(1 << 20), RelayCodeByteLimit, true, RelayEndByteLimit},
		{"duration", WithRelayMaxDuration(300 * time.Millisecond), RelayCodeTimeLimit, false, RelayEndTimeLimit},
		{"idle", WithRelayIdleTimeout(300 * time.Millisecond), RelayCodeIdle, false, RelayEndIdle},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := &relayTracer{}
			_, addr := startServer(t, c.opt, WithTracer(tr))
			pi, _ := relayPair(t, addr, "relay-limit-"+c.name)
			d, l := joinLegs(t, addr, pi.RelayToken)
			if c.send {
				go func() {
					chunk := randomBytes(64 << 10)
					for range 64 {
						if _, err := d.Write(chunk); err != nil {
							return
						}
					}
				}()
			}
			for who, conn := range map[string]*RelayConn{"dialer": d, "listener": l} {
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := io.Copy(io.Discard, conn)
				var re *RelayEndedError
				if !errors.As(err, &re) || re.Code != c.code || re.Reason == "" {
					t.Errorf("%s: %v, want END %d with a reason", who, err, c.code)
				}
			}
			if s := tr.waitEnded(t); s.Reason != c.trace {
				t.Errorf("tracer: session ended with %q, want %q", s.Reason, c.trace)
			}
		})
	}
}

// TestRelayRate: a rate cap slows a direction down to about the cap.
func TestRelayRate(t *testing.T) {
	const rate = 2 << 20
	_, addr := startServer(t, WithRelayRate(rate))
	pi, _ := relayPair(t, addr, "relay-rate")
	d, l := joinLegs(t, addr, pi.RelayToken)
	start := time.Now()
	go func() { d.Write(randomBytes(rate)); d.CloseWrite() }()
	n, err := io.Copy(io.Discard, l)
	if err != nil || n != rate {
		t.Fatalf("read %d, %v", n, err)
	}
	// One second's worth at the cap; the first frame goes at once.
	if el := time.Since(start); el < 800*time.Millisecond {
		t.Errorf("%d bytes at a cap of %d B/s took only %v", n, rate, el)
	}
}

// TestRelayServerKilled: a server that goes away mid-session (Close, no
// END) ends the relayed stream with ErrRelayLost, not a clean EOF.
func TestRelayServerKilled(t *testing.T) {
	srv, addr := startServer(t)
	pi, _ := relayPair(t, addr, "relay-kill")
	d, l := joinLegs(t, addr, pi.RelayToken)
	d.Write([]byte("x"))
	if _, err := io.ReadFull(l, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, l); !errors.Is(err, ErrRelayLost) {
		t.Fatalf("after the server died: %v, want ErrRelayLost", err)
	}
}

// TestRelayShutdownSaysWhy: a graceful shutdown tells relayed peers.
func TestRelayShutdownSaysWhy(t *testing.T) {
	tr := &relayTracer{}
	srv, addr := startServer(t, WithTracer(tr))
	pi, _ := relayPair(t, addr, "relay-shutdown")
	d, l := joinLegs(t, addr, pi.RelayToken)
	// The drain grace: the session relays on until it ends, then is told.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	time.Sleep(100 * time.Millisecond) // Shutdown has closed the other connections
	if _, err := l.Write([]byte("still relayed")); err != nil {
		t.Fatalf("writing during the grace: %v", err)
	}
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("still relayed"))
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "still relayed" {
		t.Fatalf("reading during the grace: %q, %v", buf, err)
	}
	_, err := io.Copy(io.Discard, d)
	if serr := <-shut; !errors.Is(serr, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the grace's end", serr)
	}
	var re *RelayEndedError
	if !errors.As(err, &re) || re.Code != RelayCodeShutdown {
		t.Fatalf("%v, want END 503", err)
	}
	if s := tr.waitEnded(t); s.Reason != RelayEndShuttingDown {
		t.Errorf("tracer: session ended with %q, want %q", s.Reason, RelayEndShuttingDown)
	}
}

// TestRelayOff: without relaying, peer info carries no token and a Relay
// request is refused.
func TestRelayOff(t *testing.T) {
	_, addr := startServer(t, WithRelay(false))
	ctx := testCtx(t)
	reg, err := Register(ctx, addr, anyLocal, "norelay", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pi, ctl, err := Connect(ctx, addr, anyLocal, "norelay", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if !pi.RelayToken.IsZero() {
		t.Fatalf("relay off, but peer info has token %v", pi.RelayToken)
	}
	var tok RelayToken
	tok[0] = 1
	if _, err := DialRelay(ctx, addr, tok, RoleControlling); !errors.Is(err, ErrRelayRefused) {
		t.Fatalf("relay off: %v, want refused", err)
	}
}

// TestRelayPerSourceLimit: the per-source cap refuses the session that
// would exceed it (all test legs come from 127.0.0.1).
func TestRelayPerSourceLimit(t *testing.T) {
	_, addr := startServer(t, WithRelaySessions(0, 1))
	pi, _ := relayPair(t, addr, "relay-src1")
	joinLegs(t, addr, pi.RelayToken)
	pi2, _ := relayPair(t, addr, "relay-src2")
	_, err := DialRelay(testCtx(t), addr, pi2.RelayToken, RoleControlling)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeTooManyConns {
		t.Fatalf("second session from one source: %v, want 429", err)
	}
}

// TestRelayBadFrame: a leg that sends garbage ends the session with 400
// for its peer.
func TestRelayBadFrame(t *testing.T) {
	tr := &relayTracer{}
	_, addr := startServer(t, WithTracer(tr))
	pi, _ := relayPair(t, addr, "relay-bad")
	d, l := joinLegs(t, addr, pi.RelayToken)
	d.tc.Write([]byte{0x7f, 0, 0, 1, 0})
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, l)
	var re *RelayEndedError
	if !errors.As(err, &re) || re.Code != RelayCodeProtocol {
		t.Fatalf("%v, want END 400", err)
	}
	if s := tr.waitEnded(t); s.Reason != RelayEndError {
		t.Errorf("tracer: session ended with %q, want %q", s.Reason, RelayEndError)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelayLegsJoinTogether: legs that arrive at the same moment, many
// times over, all become sessions: the second leg may start the session
// while the first is still being admitted (it once found the first leg's
// state not yet stored and crashed the server).
func TestRelayLegsJoinTogether(t *testing.T) {
	_, addr := startServer(t, WithRelaySessions(0, 0), WithMaxConnsPerIP(0))
	for i := range 40 {
		pi, _ := relayPair(t, addr, fmt.Sprintf("relay-together-%d", i))
		d, l := joinLegs(t, addr, pi.RelayToken)
		if _, err := d.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		l.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(l, b); err != nil || b[0] != byte(i) {
			t.Fatalf("session %d: %v %v", i, b, err)
		}
		d.Close()
		l.Close()
	}
}
