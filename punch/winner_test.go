package punch

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"
)

// TestWinnerClosesGracefully: dial attempts close abortively (linger 0),
// but the winner must not: data written just before Close arrives whole,
// followed by EOF rather than a reset. Both sides are tried, as either may
// hold the end that was dialed.
func TestWinnerClosesGracefully(t *testing.T) {
	for _, aWrites := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		b := newEndpoint(t, netip.AddrPortFrom(lo4, 0))
		ca, cb := mustPair(ctx, t, a, b, []netip.AddrPort{b.Addr()}, []netip.AddrPort{a.Addr()})
		from, to := ca, cb
		if !aWrites {
			from, to = cb, ca
		}
		const size = 16 << 20
		done := make(chan error, 1)
		go func() {
			_, err := from.Write(make([]byte, size))
			from.Close() // with bytes still in the send buffer
			done <- err
		}()
		// Let Close happen while data is still queued.
		time.Sleep(50 * time.Millisecond)
		to.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, to)
		if err != nil || n != size {
			t.Errorf("%v→%v: read %d bytes, %v; want %d and EOF", from.Info().Method, to.Info().Method, n, err, size)
		}
		if err := <-done; err != nil {
			t.Errorf("writing: %v", err)
		}
		to.Close()
	}
}
