package rendezvous

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/pion/stun/v3"
)

// startKeepAlive pings the client every keepalive period, and at once when
// the kernel has no RTT sample to pair with (the ping's answer is then the
// first one). Answers reset the idle timeout; a dead client's connection
// (and name) go at the idle timeout.
func (c *peerConn) startKeepAlive() {
	first := time.Duration(0)
	if _, ok := c.kernelRTT(); ok {
		// Most dialers close within moments of pairing: an immediate
		// ping was a fifth of the server's pairing CPU (BENCHMARKS.md).
		first = c.s.cfg.keepAlive
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ka == nil {
		c.ka = time.AfterFunc(first, c.keepAliveTick)
	}
}

func (c *peerConn) keepAliveTick() {
	select {
	case <-c.closed:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.pingTimeout)
	if _, err := c.ping(ctx); err != nil {
		c.log.Debug("keepalive ping unanswered", "err", err)
	}
	cancel()
	c.mu.Lock()
	c.ka.Reset(c.s.cfg.keepAlive)
	c.mu.Unlock()
}

// pendingPing is a Ping the server sent and awaits the answer of.
type pendingPing struct {
	sent time.Time
	ch   chan time.Duration
}

var errTooManyPings = errors.New("too many pings in flight")

// ping sends a Ping request and returns the round-trip time of its answer.
func (c *peerConn) ping(ctx context.Context) (time.Duration, error) {
	id := newTxID()
	ch := make(chan time.Duration, 1)
	req := &message{Type: stun.NewType(methodPing, stun.ClassRequest), TxID: id}
	c.mu.Lock()
	if c.pings == nil {
		c.pings = make(map[[stun.TransactionIDSize]byte]pendingPing)
	}
	if len(c.pings) >= 8 {
		c.mu.Unlock()
		return 0, errTooManyPings
	}
	c.pings[id] = pendingPing{sent: time.Now(), ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pings, id)
		c.mu.Unlock()
	}()
	if err := c.send(req); err != nil {
		return 0, err
	}
	select {
	case rtt := <-ch:
		return rtt, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *peerConn) pingAnswered(id [stun.TransactionIDSize]byte) {
	c.mu.Lock()
	p, ok := c.pings[id]
	if ok {
		delete(c.pings, id)
		c.lastRTT = time.Since(p.sent)
	}
	rtt := c.lastRTT
	c.mu.Unlock()
	if ok {
		p.ch <- rtt
	}
}
