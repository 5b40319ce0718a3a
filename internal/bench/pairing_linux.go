package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	pairPool    = 256 // registered listeners
	pairWorkers = 64  // dialers in flight
)

// benchPairing: Connect requests matched per second against a pool of
// registered listeners. Each dialer opens a connection, sends Connect for a
// random listener, reads its peer info and resets the connection, as
// `tcpunch dial` does after its punch.
func benchPairing(ctx context.Context, cfg Config) error {
	raiseNofile(100000)
	fmt.Fprintf(cfg.Out, "\n## Pairing (loopback, `tcpunch serve`, %d registered listeners, %d dialers in flight, %v per round)\n\n", pairPool, pairWorkers, cfg.Duration)
	fmt.Fprintf(cfg.Out, "| round | pairs/s | dial+Connect→peer info p50 | p99 | errors | peer infos seen by listeners |\n|---|---|---|---|---|---|\n")
	var rates []float64
	for r := 0; r < cfg.Rounds; r++ {
		rate, err := pairingOnce(ctx, cfg, r, "")
		if err != nil {
			return err
		}
		rates = append(rates, rate)
	}
	fmt.Fprintf(cfg.Out, "| **median** | **%s** | | | | |\n", si(median(rates)))
	if cfg.Profile != "" {
		prof := filepath.Join(cfg.Profile, "pairing-server.pprof")
		if _, err := pairingOnce(ctx, cfg, -1, prof); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Out, "\nprofile: `go tool pprof -top %s` (the row marked profiled ran under the CPU profiler)\n", prof)
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only pairing --rounds %d --duration %v`\n", cfg.Rounds, cfg.Duration)
	return nil
}

func pairingOnce(ctx context.Context, cfg Config, round int, profile string) (float64, error) {
	srv, err := startServe(ctx, cfg, profile, "--max-conns", "0", "--max-conns-per-ip", "0")
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	var seen atomic.Int64
	var listeners []*client
	defer func() {
		for _, l := range listeners {
			l.reset()
		}
	}()
	for i := 0; i < pairPool; i++ {
		l, err := register(ctx, srcAddr(30, 0), srv.addr, "pool-"+strconv.Itoa(i))
		if err != nil {
			return 0, fmt.Errorf("registering the pool: %w", err)
		}
		listeners = append(listeners, l)
		go l.idle(func() { seen.Add(1) })
	}
	var done, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	deadline := time.Now().Add(cfg.Duration)
	start := time.Now()
	for w := 0; w < pairWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				cl, err := dialClient(ctx, srcAddr(31, w), srv.addr, 5*time.Second)
				if err != nil {
					errs.Add(1)
					continue
				}
				_ = cl.c.SetDeadline(time.Now().Add(5 * time.Second))
				t, err := cl.request(typeConnectReq, "pool-"+strconv.Itoa(rand.N(pairPool)))
				cl.reset()
				if err != nil || t != typeConnectOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
				done.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rate := float64(done.Load()) / time.Since(start).Seconds()
	time.Sleep(200 * time.Millisecond)
	label := strconv.Itoa(round + 1)
	if profile != "" {
		label = "profiled"
	}
	fmt.Fprintf(cfg.Out, "| %s | %s | %.2f ms | %.2f ms | %d | %d / %d |\n", label, si(rate),
		durQuantile(lat, 0.5), durQuantile(lat, 0.99), errs.Load(), seen.Load(), done.Load())
	cfg.logf("pairing round %s: %.0f pairs/s", label, rate)
	return rate, nil
}
