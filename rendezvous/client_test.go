package rendezvous

import (
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// withGoroutineExit runs f as each goroutine of a control connection ends.
func withGoroutineExit(f func()) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.goroutineExit = f })
}

// Close of a control connection returns only once its goroutines have
// ended. Each goroutine lingers in the exit hook before it ends, so a Close
// that did not wait would return while the count is still short.
func TestCloseWaitsForGoroutines(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	var exited atomic.Int32
	slowExit := withGoroutineExit(func() {
		time.Sleep(100 * time.Millisecond)
		exited.Add(1)
	})

	reg, err := Register(ctx, addr, reusedPort(t), "waited", nil, slowExit)
	if err != nil {
		t.Fatal(err)
	}
	_, closer, err := Connect(ctx, addr, anyLocal, "waited", nil, slowExit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Next(ctx); err != nil {
		t.Fatal(err)
	}
	closeAndCount := func(what string, c io.Closer, want int32) {
		t.Helper()
		exited.Store(0)
		if err := c.Close(); err != nil {
			t.Fatalf("closing %s: %v", what, err)
		}
		if got := exited.Load(); got != want {
			t.Errorf("%s: %d goroutines had ended when Close returned, want %d", what, got, want)
		}
	}
	// The dialer's connection runs a reader, a keepalive and a drain.
	closeAndCount("the dialer's control connection", closer, 3)
	// The listener's one connection runs a reader and a keepalive.
	closeAndCount("the registration", reg, 2)
}
