package punch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// SYN budget. Whatever the candidates and however fast they refuse, a punch
// sends at most synRate SYNs a second (bursts of as many), and an Endpoint,
// all its punches together, at most endpointSYNRate: a listener cannot be
// turned into a SYN flooder by the dialers it serves.
const (
	defaultSYNsPerSecond         = 50
	defaultEndpointSYNsPerSecond = 400
	defaultMaxPunches            = 8
	// refusedFloor is the least pause before a candidate that refused (RST)
	// is dialed again. On a short path the RTT-scaled pause would shrink to
	// about a millisecond: hundreds of SYNs a second at a closed port.
	refusedFloor = 10 * time.Millisecond
)

// synBucket is a token bucket of SYNs that waits for a token.
type synBucket struct {
	perSec float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newSYNBucket(perSec int) *synBucket {
	if perSec <= 0 {
		return nil
	}
	return &synBucket{perSec: float64(perSec), tokens: float64(perSec), last: time.Now()}
}

// reserve takes a token, possibly ahead (tokens go negative), and says how
// long to wait before using it.
func (b *synBucket) reserve() time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.perSec, b.tokens+now.Sub(b.last).Seconds()*b.perSec)
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.perSec * float64(time.Second))
}

// refund gives back a token reserved but not used (the wait was cut short).
func (b *synBucket) refund() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.tokens = min(b.perSec, b.tokens+1)
	b.mu.Unlock()
}

// waitSYN blocks until the punch and its Endpoint may send one more SYN;
// false if ctx ended first.
func (p *session) waitSYN(ctx context.Context) bool {
	for _, b := range []*synBucket{p.syns, p.e.syns} {
		d := b.reserve()
		if d == 0 {
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			b.refund()
			return false
		}
	}
	return true
}

// WithMaxSYNRate caps the SYNs one punch sends per second (default 50) and
// those of all punches of one Endpoint together (default 400). Kernel
// retransmissions of a SYN are not counted: they come at most once per
// attempt timeout. Both must be positive.
func WithMaxSYNRate(perPunch, perEndpoint int) Option {
	return func(c *config) {
		if perPunch < 1 || perEndpoint < 1 {
			c.invalid("WithMaxSYNRate(%d, %d): both rates must be positive", perPunch, perEndpoint)
			return
		}
		c.synRate, c.endpointSYNRate = perPunch, perEndpoint
	}
}

// WithMaxPunches caps the punches a [Listener] runs at once (default 8).
// A dialer beyond it is refused at once through the rendezvous (the
// dialer's punch fails with rendezvous.ErrPeerRefused, code 503), not
// queued: a flood of Connects must not buy unbounded work. n must be at
// least 1.
func WithMaxPunches(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithMaxPunches(%d): must be at least 1", n)
			return
		}
		c.maxPunches = n
	}
}

// admit takes a punch slot for pi, or refuses pi's dialer through the
// rendezvous when every slot is taken.
func (l *Listener) admit(pi rendezvous.PeerInfo) bool {
	l.mu.Lock()
	ok := l.active < l.cfg.maxPunches
	if ok {
		l.active++
	}
	n := l.active
	l.mu.Unlock()
	if ok {
		return true
	}
	reason := fmt.Sprintf("listener busy: %d punches in progress", n)
	if err := l.reg.Refuse(pi.Tag, rendezvous.CodeListenerBusy, reason); err != nil {
		l.cfg.logger.Debug("punch: refusing a dialer", "err", err)
	}
	l.ep.emit(Event{Kind: EventRefused, Addr: pi.Candidates[0], Err: fmt.Errorf("%w: %s", ErrBusy, reason)})
	return false
}

func (l *Listener) done() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
}
