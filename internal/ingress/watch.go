package ingress

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// WatchBalancer wraps ln, unchanged for the server (connections pass
// through as they are), and warns in the log when most of the recent
// connections come from one address: the sign of a load balancer or proxy
// in front without the PROXY protocol. The server would then observe the
// balancer's endpoint for every peer, and punches would aim at it.
//
// It keeps the last window source addresses in memory only; they never
// reach a metric.
func WatchBalancer(ln net.Listener, opts ...Option) net.Listener {
	cfg := newConfig(opts)
	return &watchListener{Listener: ln, cfg: cfg, ring: make([]netip.Addr, 0, cfg.window), counts: make(map[netip.Addr]int)}
}

type watchListener struct {
	net.Listener
	cfg *config

	mu     sync.Mutex
	ring   []netip.Addr // the last window sources, oldest at next
	next   int
	counts map[netip.Addr]int
	seen   int // accepts since the last check
	warned time.Time
}

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.observe(addrOf(c.RemoteAddr()))
	}
	return c, err
}

func (l *watchListener) observe(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < l.cfg.window {
		l.ring = append(l.ring, a)
	} else {
		old := l.ring[l.next]
		if l.counts[old]--; l.counts[old] <= 0 {
			delete(l.counts, old)
		}
		l.ring[l.next] = a
		l.next = (l.next + 1) % l.cfg.window
	}
	l.counts[a]++
	// Judge a full window, once per window's worth of accepts.
	if l.seen++; len(l.ring) < l.cfg.window || l.seen < l.cfg.window {
		return
	}
	l.seen = 0
	if n := l.counts[a]; float64(n) >= l.cfg.share*float64(l.cfg.window) {
		l.warnLocked(a, n)
		return
	}
	for top, n := range l.counts {
		if float64(n) >= l.cfg.share*float64(l.cfg.window) {
			l.warnLocked(top, n)
			return
		}
	}
}

func (l *watchListener) warnLocked(a netip.Addr, n int) {
	now := time.Now()
	if !l.warned.IsZero() && now.Sub(l.warned) < l.cfg.every {
		return
	}
	l.warned = now
	l.cfg.log.Warn("most peers come from one address: a load balancer or proxy in front? "+
		"The server then sees its address for every peer and punches aim at it; "+
		"give it --proxy-protocol-from and enable the PROXY protocol v2 there (HAProxy: send-proxy-v2)",
		"addr", a.String(), "connections", n, "of_last", l.cfg.window)
}
