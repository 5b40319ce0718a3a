package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchBurst: cfg.Burst connections opened at once; each sends a STUN
// Binding request and must get its answer. Counts refusals, resets and
// timeouts (target: none), with the kernel's listen-queue counters.
func benchBurst(ctx context.Context, cfg Config) error {
	if got, err := raiseNofile(uint64(cfg.Burst)*2 + 10000); got < uint64(cfg.Burst)+1000 {
		return fmt.Errorf("descriptor limit %d is too low for a burst of %d (%v): run as root", got, cfg.Burst, err)
	}
	srv, err := startServe(ctx, cfg, "", "--max-conns", "0", "--max-conns-per-ip", "0")
	if err != nil {
		return err
	}
	defer srv.stop()

	const perSource = 500
	var refused, reset, timeout, other atomic.Int64
	var firstOther atomic.Value
	lat := make([]time.Duration, cfg.Burst)
	clients := make([]*client, cfg.Burst)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.reset()
			}
		}
	}()
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < cfg.Burst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			t0 := time.Now()
			cl, err := dialClient(ctx, srcAddr(40, i/perSource), srv.addr, 15*time.Second)
			if err == nil {
				clients[i] = cl
				_ = cl.c.SetDeadline(time.Now().Add(15 * time.Second))
				var t uint16
				t, err = cl.request(typeBindingReq, "")
				if err == nil && t != typeBindingOK {
					err = fmt.Errorf("response type %#04x", t)
				}
			}
			switch {
			case err == nil:
				lat[i] = time.Since(t0)
			case errors.Is(err, syscall.ECONNREFUSED):
				refused.Add(1)
			case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
				reset.Add(1)
			case errors.Is(err, os.ErrDeadlineExceeded):
				timeout.Add(1)
			default:
				other.Add(1)
				firstOther.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // every goroutine parked at the gate
	before := netstat()
	start := time.Now()
	close(ready)
	wg.Wait()
	took := time.Since(start)
	after := netstat()
	var ok []time.Duration
	for _, d := range lat {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	delta := func(k string) int64 { return after[k] - before[k] }
	fmt.Fprintf(cfg.Out, "\n## Accept burst (loopback, `tcpunch serve`, %d connections opened at once, each one Binding request)\n\n", cfg.Burst)
	fmt.Fprintf(cfg.Out, "| answered | refused | reset | timed out | other | connect+answer p50 | p99 | max | all done in | ListenOverflows | ListenDrops | SyncookiesSent |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(cfg.Out, "| %d | %d | %d | %d | %d | %.1f ms | %.1f ms | %.1f ms | %.2f s | %d | %d | %d |\n",
		len(ok), refused.Load(), reset.Load(), timeout.Load(), other.Load(),
		durQuantile(ok, 0.5), durQuantile(ok, 0.99), durQuantile(ok, 1), took.Seconds(),
		delta("ListenOverflows"), delta("ListenDrops"), delta("SyncookiesSent"))
	if s, _ := firstOther.Load().(string); s != "" {
		fmt.Fprintf(cfg.Out, "\nfirst other error: %s\n", s)
	}
	fmt.Fprintf(cfg.Out, "\n(kernel counters are for the whole host network namespace, which other processes share)\n\nreproduce: `tcpunch bench --only burst --burst %d`\n", cfg.Burst)
	cfg.logf("burst: %d of %d answered", len(ok), cfg.Burst)
	return nil
}
