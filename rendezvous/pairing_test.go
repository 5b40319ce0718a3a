package rendezvous

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

func TestStartDelays(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		a, b, wantA, wantB time.Duration
	}{
		{10 * ms, 80 * ms, 35 * ms, 0}, // B farther: B first, A 35 ms later
		{80 * ms, 10 * ms, 0, 35 * ms},
		{20 * ms, 20 * ms, 0, 0},
		{0, 50 * ms, 25 * ms, 0}, // no sample for A: treated as zero
		{-5 * ms, 10 * ms, 5 * ms, 0},
	} {
		gotA, gotB := startDelays(c.a, c.b)
		if gotA != c.wantA || gotB != c.wantB {
			t.Errorf("startDelays(%v, %v) = %v, %v; want %v, %v", c.a, c.b, gotA, gotB, c.wantA, c.wantB)
		}
		// The invariant: send delay + one-way time is the same for both.
		if c.a >= 0 && c.b >= 0 && gotA+c.a/2 != gotB+c.b/2 {
			t.Errorf("arrivals differ for %v, %v: %v vs %v", c.a, c.b, gotA+c.a/2, gotB+c.b/2)
		}
	}
}

func TestWithObserved(t *testing.T) {
	got := withObserved(ap("1.1.1.1:1"), []netip.AddrPort{ap("10.0.0.1:1"), ap("1.1.1.1:1"), ap("10.0.0.1:1"), ap("[::1]:2")})
	want := []netip.AddrPort{ap("1.1.1.1:1"), ap("10.0.0.1:1"), ap("[::1]:2")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for attempt := range 40 {
		d := backoff(attempt, lo, hi)
		ceil := min(lo<<min(attempt, 20), hi)
		if d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, d, ceil/2, ceil)
		}
	}
}

// delayProxy forwards TCP to target, adding oneWay in each direction, so a
// loopback client looks far away. It returns the proxy's address. Its
// connections and pumps end with the test.
func delayProxy(t testing.TB, target string, oneWay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Serve(t, ln, func(in net.Conn) {
		out, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		back := make(chan struct{})
		go func() { defer close(back); pumpDelayed(out, in, oneWay) }()
		pumpDelayed(in, out, oneWay)
		<-back
	})
	return ln.Addr().String()
}

// pumpDelayed copies src to dst, each chunk oneWay after it was read. When
// either side fails it closes both, which ends the opposite pump too, and
// it returns only once its reader has ended.
func pumpDelayed(src, dst net.Conn, d time.Duration) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 4096)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	src.Close()
	dst.Close()
	for range ch { // the reader fails now that src is closed
	}
}

// pairRecorder keeps the server's "paired" log records.
type pairRecorder struct {
	mu      sync.Mutex
	records []map[string]any
}

func (p *pairRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (p *pairRecorder) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *pairRecorder) WithGroup(string) slog.Handler            { return p }
func (p *pairRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "paired" {
		return nil
	}
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	p.mu.Lock()
	p.records = append(p.records, m)
	p.mu.Unlock()
	return nil
}

// syncPair runs one pairing with the listener and the dialer behind delay
// proxies and returns how much later the dialer's peer info arrived than
// the listener's (negative: earlier).
func syncPair(tb testing.TB, ctx context.Context, reg *Registration, dialVia string) time.Duration {
	got := make(chan time.Time, 1)
	go func() {
		if _, err := reg.Next(ctx); err == nil {
			got <- time.Now()
		}
		close(got)
	}()
	_, c, err := Connect(ctx, dialVia, anyLocal, "far", nil)
	tD := time.Now()
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	tL, ok := <-got
	if !ok {
		tb.Fatal("listener got no peer info")
	}
	return tD.Sub(tL)
}

// With a near listener (RTT ~10 ms) and a far dialer (~80 ms) the server
// must delay the listener's message by about half the difference and the
// dialer's not at all. The arrival skew is logged, not asserted.
func TestSynchronizedStartDelaysTheNearPeer(t *testing.T) {
	ctx := testCtx(t)
	rec := &pairRecorder{}
	srv, addr := startServer(t, WithKernelRTT(false), WithLogger(slog.New(rec)))
	_ = srv
	reg, err := Register(ctx, delayProxy(t, addr, 5*time.Millisecond), anyLocal, "far", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	dialVia := delayProxy(t, addr, 40*time.Millisecond)
	for range 3 {
		t.Logf("arrival skew (dialer - listener): %v", syncPair(t, ctx, reg, dialVia))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.records) != 3 {
		t.Fatalf("%d paired records, want 3", len(rec.records))
	}
	for _, r := range rec.records {
		dl, _ := r["delay_listener"].(time.Duration)
		dd, _ := r["delay_dialer"].(time.Duration)
		if dd != 0 || dl <= 0 {
			t.Errorf("delays: listener %v, dialer %v; want the near listener delayed and the far dialer not (%v)", dl, dd, r)
		}
	}
}

// BenchmarkSynchronizedStart reports the arrival skew of the two peer
// infos with emulated RTTs of 10 ms (listener) and 80 ms (dialer). Without
// compensation it would be about 35 ms.
func BenchmarkSynchronizedStart(b *testing.B) {
	ctx := testCtx(b)
	_, addr := startServer(b, WithKernelRTT(false))
	reg, err := Register(ctx, delayProxy(b, addr, 5*time.Millisecond), anyLocal, "far", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	dialVia := delayProxy(b, addr, 40*time.Millisecond)
	var sum, worst time.Duration
	n := 0
	for b.Loop() {
		s := syncPair(b, ctx, reg, dialVia)
		s = max(s, -s)
		sum += s
		worst = max(worst, s)
		n++
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(n), "µs-mean-skew")
	b.ReportMetric(float64(worst.Microseconds()), "µs-worst-skew")
}

// BenchmarkPairs measures full pairings per second on loopback: a dialer
// connects, both sides get peer info, the dialer closes.
func BenchmarkPairs(b *testing.B) {
	ctx := context.Background()
	_, addr := startServer(b, WithMaxConnsPerIP(0))
	reg, err := Register(ctx, addr, anyLocal, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	go func() {
		for {
			if _, err := reg.Next(ctx); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, c, err := Connect(ctx, addr, anyLocal, "bench", nil)
			if err != nil {
				b.Error(err)
				return
			}
			_ = c.(io.Closer).Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
}
