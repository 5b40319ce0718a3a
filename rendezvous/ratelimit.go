package rendezvous

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Rate limits. The per-source connection cap (limits.go) bounds the
// connections one source holds, not how fast it opens them: a client that
// opens and closes Connects would otherwise get every one answered, and
// the listener it targets one punch per answer. Token buckets bound the
// rate of each kind of request per source prefix (an IPv6 holder has a
// /64 at least, so per-address limits would not bind it) and the rate of
// Connects per name (many sources at once). A request over its rate is
// answered 429 and counted; the connection is then closed.

// Default rates, per second, and bursts. A listener registers once per
// (re)connection; a person dials a few times a minute; a script a few a
// second. Per-name is above per-source so that one abusive source cannot
// drain a name's bucket alone.
const (
	DefaultRegisterRate     = 2.0
	DefaultRegisterBurst    = 10
	DefaultConnectRate      = 10.0
	DefaultConnectBurst     = 20
	DefaultUnknownNameRate  = 2.0
	DefaultUnknownNameBurst = 10
	DefaultNameConnectRate  = 20.0
	DefaultNameConnectBurst = 40
	DefaultIPv4PrefixBits   = 32
	DefaultIPv6PrefixBits   = 64
	// DefaultMaxRateEntries bounds each bucket table. Beyond it, new
	// sources share one overflow bucket: memory stays bounded whatever
	// the number of /64s an attacker holds, at the cost of fairness
	// between sources while the table is full.
	DefaultMaxRateEntries = 65536
)

// rate is one configured limit: perSec tokens a second, at most burst
// stored. perSec 0 means no limit.
type rate struct {
	perSec float64
	burst  float64
}

func (r rate) unlimited() bool { return r.perSec == 0 }

// tokenBucket is a token bucket: tokens as of last.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take refills b to now and takes one token if there is one.
func (b *tokenBucket) take(r rate, now time.Time) bool {
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSec)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether b has refilled to its burst by now: it then holds
// nothing a fresh bucket would not, and may be forgotten.
func (b *tokenBucket) full(r rate, now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*r.perSec >= r.burst
}

// limiter is a bounded table of token buckets keyed by K.
type limiter[K comparable] struct {
	r          rate
	maxEntries int

	mu        sync.Mutex
	m         map[K]*tokenBucket
	overflow  tokenBucket
	lastSweep time.Time
}

func newLimiter[K comparable](r rate, maxEntries int) *limiter[K] {
	return &limiter[K]{r: r, maxEntries: maxEntries, m: make(map[K]*tokenBucket)}
}

// allow takes a token for k, reporting whether there was one.
func (l *limiter[K]) allow(k K, now time.Time) bool {
	if l == nil || l.r.unlimited() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[k]
	if !ok {
		if len(l.m) >= l.maxEntries {
			l.sweepLocked(now)
		}
		if len(l.m) >= l.maxEntries {
			// The table is full of active sources: share one bucket.
			if l.overflow.last.IsZero() {
				l.overflow = tokenBucket{tokens: l.r.burst, last: now}
			}
			return l.overflow.take(l.r, now)
		}
		b = &tokenBucket{tokens: l.r.burst, last: now}
		l.m[k] = b
	}
	return b.take(l.r, now)
}

// sweepLocked forgets every bucket that has refilled; at most once per
// refill time, so a full table of active sources does not cost a scan per
// request.
func (l *limiter[K]) sweepLocked(now time.Time) {
	every := time.Duration(l.r.burst / l.r.perSec * float64(time.Second))
	if now.Sub(l.lastSweep) < max(every, time.Second) {
		return
	}
	l.lastSweep = now
	for k, b := range l.m {
		if b.full(l.r, now) {
			delete(l.m, k)
		}
	}
}

func (l *limiter[K]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// sourcePrefix is the unit a source is counted by: its address masked to
// the configured prefix length of its family.
func sourcePrefix(a netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := v6Bits
	if a.Is4() {
		bits = v4Bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return p
}

// rateLimits holds the server's buckets.
type rateLimits struct {
	register, connect, unknown *limiter[netip.Prefix]
	name                       *limiter[string]
}

func newRateLimits(c *serverConfig) *rateLimits {
	return &rateLimits{
		register: newLimiter[netip.Prefix](c.registerRate, c.maxRateEntries),
		connect:  newLimiter[netip.Prefix](c.connectRate, c.maxRateEntries),
		unknown:  newLimiter[netip.Prefix](c.unknownRate, c.maxRateEntries),
		name:     newLimiter[string](c.nameConnectRate, c.maxRateEntries),
	}
}

func (s *Server) prefixOf(a netip.Addr) netip.Prefix {
	return sourcePrefix(a, s.cfg.v4Bits, s.cfg.v6Bits)
}

// rateLimited answers req with 429, counts it, and closes the connection:
// a source over its rate gets nothing more from this connection.
func (c *peerConn) rateLimited(req *message, what string, counter *counter) {
	counter.add()
	c.s.cfg.tracer.Refused(RefusedRateLimit) // the 429 itself is counted by send (trace.go)
	c.s.badLog.note(c.s.prefixOf(c.remote.Addr()), "rate limited: "+what)
	_ = c.send(errorResponse(req, CodeTooManyRequests, "rate limit: too many "+what+"; slow down"))
	go c.close()
}

// allowRegister and allowConnect check the per-source buckets. On refusal
// they have answered and the caller stops.
func (c *peerConn) allowRegister(req *message) bool {
	if c.s.rate.register.allow(c.s.prefixOf(c.remote.Addr()), time.Now()) {
		return true
	}
	c.rateLimited(req, "registrations from your network", &c.s.stats.registerLimited)
	return false
}

func (c *peerConn) allowConnect(req *message) bool {
	if c.s.rate.connect.allow(c.s.prefixOf(c.remote.Addr()), time.Now()) {
		return true
	}
	c.rateLimited(req, "connects from your network", &c.s.stats.connectLimited)
	return false
}

// allowUnknown is checked before a 404 is sent: names are not free to
// enumerate.
func (c *peerConn) allowUnknown(req *message) bool {
	if c.s.rate.unknown.allow(c.s.prefixOf(c.remote.Addr()), time.Now()) {
		return true
	}
	c.rateLimited(req, "connects to unknown names from your network", &c.s.stats.unknownLimited)
	return false
}

// allowName is checked once the name has a listener: it bounds the peer
// infos one listener receives from all sources together.
func (c *peerConn) allowName(req *message) bool {
	if c.s.rate.name.allow(req.Name, time.Now()) {
		return true
	}
	c.rateLimited(req, fmt.Sprintf("connects to %q", req.Name), &c.s.stats.nameLimited)
	return false
}
