package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// benchIdle: resident memory of `tcpunch serve` per idle registered
// listener. The listeners answer the server's keepalive pings, as real
// ones do.
func benchIdle(ctx context.Context, cfg Config) error {
	most := 0
	for _, n := range cfg.Idle {
		most = max(most, n)
	}
	limit, err := raiseNofile(uint64(most) + 10000)
	fit := (int(limit) - 1500) / 1000 * 1000 // listeners that fit in one process's descriptors
	if fit < 1000 {
		return fmt.Errorf("descriptor limit %d is too low (%v)", limit, err)
	}
	fmt.Fprintf(cfg.Out, "\n## Idle registered listeners (loopback, `tcpunch serve`)\n\n")
	fmt.Fprintf(cfg.Out, "| listeners | RSS before | RSS after | RSS per listener | registrations/s | failed |\n|---|---|---|---|---|---|\n")
	for _, n := range cfg.Idle {
		if n > fit {
			// Without CAP_SYS_RESOURCE the hard RLIMIT_NOFILE cannot be
			// raised; measure the largest count that fits instead.
			fmt.Fprintf(cfg.Out, "| %d | not run: RLIMIT_NOFILE is %d here and cannot be raised (%v); measuring %d instead | | | | |\n", n, limit, err, fit)
			cfg.logf("idle: %d listeners do not fit in %d descriptors; measuring %d", n, limit, fit)
			n = fit
		}
		if err := idleOnce(ctx, cfg, n); err != nil {
			return err
		}
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only idle --idle %s`\n", joinInts(cfg.Idle))
	return nil
}

func idleOnce(ctx context.Context, cfg Config, n int) error {
	srv, err := startServe(ctx, cfg, "", "--max-conns", strconv.Itoa(n+1000), "--max-conns-per-ip", "0")
	if err != nil {
		return err
	}
	defer srv.stop()
	time.Sleep(500 * time.Millisecond)
	before, err := rssKB(srv.pid())
	if err != nil {
		return err
	}
	clients := make([]*client, n)
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cl, err := register(ctx, srcAddr(20, i/1000), srv.addr, "idle-"+strconv.Itoa(i))
				if err != nil {
					if failed.Add(1) == 1 {
						cfg.logf("idle: register %d: %v", i, err)
					}
					continue
				}
				clients[i] = cl
				go cl.idle(nil)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.reset()
			}
		}
	}()
	// Let the first keepalive pings settle, then sample.
	time.Sleep(3 * time.Second)
	after, err := rssKB(srv.pid())
	if err != nil {
		return err
	}
	ok := n - int(failed.Load())
	per := float64(after-before) * 1024 / float64(max(ok, 1))
	fmt.Fprintf(cfg.Out, "| %d | %.1f MiB | %.1f MiB | **%.1f KiB** | %s | %d |\n",
		n, float64(before)/1024, float64(after)/1024, per/1024, si(float64(ok)/took.Seconds()), failed.Load())
	cfg.logf("idle %d: %.1f KiB per listener", n, per/1024)
	return nil
}

func joinInts(xs []int) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ","
		}
		s += strconv.Itoa(x)
	}
	return s
}
