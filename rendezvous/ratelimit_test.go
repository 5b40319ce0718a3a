package rendezvous

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// withoutRateLimits lifts every rate limit: tests that open many
// connections from loopback are not about rates.
func withoutRateLimits() ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		c.registerRate, c.connectRate, c.unknownRate, c.nameConnectRate = rate{}, rate{}, rate{}, rate{}
	})
}

func serverCode(err error) int {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// TestConnectRateLimit: a source that empties its Connect bucket gets 429,
// counted; a client from another source is unaffected.
func TestConnectRateLimit(t *testing.T) {
	rec := newRecorder()
	srv, addr := startServer(t, WithConnectRate(0.5, 3), WithTracer(rec))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := Register(ctx, addr, ap("127.0.0.3:0"), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		_, c, err := Connect(ctx, addr, anyLocal, "svc", nil)
		if err != nil {
			t.Fatalf("connect %d within the burst: %v", i, err)
		}
		c.Close()
	}
	_, _, err = Connect(ctx, addr, anyLocal, "svc", nil)
	if serverCode(err) != CodeTooManyRequests {
		t.Fatalf("connect past the burst: got %v, want 429", err)
	}
	if got := srv.Stats().ConnectRateLimited; got != 1 {
		t.Errorf("ConnectRateLimited = %d, want 1", got)
	}
	// The Tracer is told too: the refusal, and the 429 as an answer.
	rec.mu.Lock()
	refused, answered := rec.refused[RefusedRateLimit], rec.requests["connect/429"]
	rec.mu.Unlock()
	if refused != 1 || answered != 1 {
		t.Errorf("tracer: Refused(rate_limit) %d times, Request(connect, 429) %d, want 1 and 1", refused, answered)
	}
	// Another source (127.0.0.2 is another /32) has its own bucket.
	_, c, err := Connect(ctx, addr, ap("127.0.0.2:0"), "svc", nil)
	if err != nil {
		t.Fatalf("connect from another source: %v", err)
	}
	c.Close()
}

func TestRegisterAndUnknownNameRateLimits(t *testing.T) {
	srv, addr := startServer(t, WithRegisterRate(0.1, 2), WithUnknownNameRate(0.1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, name := range []string{"n1", "n2"} {
		r, err := Register(ctx, addr, anyLocal, name, nil)
		if err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
		defer r.Close()
	}
	if _, err := Register(ctx, addr, anyLocal, "n3", nil); serverCode(err) != CodeTooManyRequests {
		t.Fatalf("register past the burst: got %v, want 429", err)
	}
	for range 2 {
		if _, _, err := Connect(ctx, addr, anyLocal, "nobody", nil); !errors.Is(err, ErrUnknownName) {
			t.Fatalf("unknown name within the burst: got %v, want 404", err)
		}
	}
	if _, _, err := Connect(ctx, addr, anyLocal, "nobody", nil); serverCode(err) != CodeTooManyRequests {
		t.Fatalf("unknown name past the burst: got %v, want 429", err)
	}
	st := srv.Stats()
	if st.RegisterRateLimited != 1 || st.UnknownNameRateLimited != 1 {
		t.Errorf("stats %+v: want one of each refused", st)
	}
}

// TestNameConnectRateLimit: the per-name bucket binds all sources together.
func TestNameConnectRateLimit(t *testing.T) {
	srv, addr := startServer(t, WithNameConnectRate(0.1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := Register(ctx, addr, anyLocal, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, src := range []string{"127.0.0.2:0", "127.0.0.3:0"} {
		_, c, err := Connect(ctx, addr, ap(src), "svc", nil)
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		c.Close()
	}
	if _, _, err := Connect(ctx, addr, ap("127.0.0.4:0"), "svc", nil); serverCode(err) != CodeTooManyRequests {
		t.Fatalf("third source past the name's burst: got %v, want 429", err)
	}
	if srv.Stats().NameRateLimited != 1 {
		t.Errorf("NameRateLimited = %d", srv.Stats().NameRateLimited)
	}
}

// TestSourcePrefixIPv6: IPv6 sources count per /64 (connection cap and
// buckets), IPv4 per address.
func TestSourcePrefixIPv6(t *testing.T) {
	a1, a2 := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	other := netip.MustParseAddr("2001:db8:1:3::1")
	l := newConnLimiter(2, 0, 32, 64)
	if ok, _ := l.acquire(a1); !ok {
		t.Fatal("first")
	}
	if ok, _ := l.acquire(a2); !ok {
		t.Fatal("second")
	}
	if ok, code := l.acquire(netip.MustParseAddr("2001:db8:1:2:abcd::1")); ok || code != CodeTooManyConns {
		t.Fatalf("third address of the same /64: ok=%v code=%d, want refused 429", ok, code)
	}
	if ok, _ := l.acquire(other); !ok {
		t.Fatal("another /64 refused")
	}
	if ok, _ := l.acquire(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Fatal("IPv4")
	}
	l.release(a1)
	if ok, _ := l.acquire(a2); !ok {
		t.Fatal("a slot released in the /64 was not reusable")
	}

	rl := newLimiter[netip.Prefix](rate{perSec: 1e-9, burst: 1}, 100)
	now := time.Now()
	if !rl.allow(sourcePrefix(a1, 32, 64), now) || rl.allow(sourcePrefix(a2, 32, 64), now) {
		t.Fatal("two addresses of one /64 must share a bucket")
	}
	if !rl.allow(sourcePrefix(other, 32, 64), now) {
		t.Fatal("another /64 must have its own bucket")
	}
	if !rl.allow(sourcePrefix(a2, 32, 128), now) {
		t.Fatal("with /128, addresses are separate sources")
	}
}

// TestRateTableBounded: a flood from many prefixes does not grow the table
// past its bound; new sources then share one overflow bucket.
func TestRateTableBounded(t *testing.T) {
	rl := newLimiter[netip.Prefix](rate{perSec: 1, burst: 1}, 64)
	now := time.Now()
	refused := 0
	for i := range 100000 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 1})
		if !rl.allow(sourcePrefix(a, 32, 64), now) {
			refused++
		}
	}
	if n := rl.len(); n > 64 {
		t.Fatalf("table grew to %d entries, bound 64", n)
	}
	if refused < 100000-64-2 {
		t.Fatalf("only %d of 100000 refused: the overflow bucket does not bind", refused)
	}
	// Once the buckets refilled, the table is swept and new sources get
	// their own again.
	later := now.Add(2 * time.Second)
	if !rl.allow(sourcePrefix(netip.MustParseAddr("2001:db8:ffff::1"), 32, 64), later) {
		t.Fatal("a new source after the sweep was refused")
	}
}
