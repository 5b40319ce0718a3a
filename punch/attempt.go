package punch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// dialLoop dials one candidate from the Endpoint's port until the punch ends
// or the candidate is dropped. Each attempt is bounded, so a SYN that a NAT
// dropped is replaced by a fresh one instead of waiting for the kernel's
// backoff, and the pause between attempts is random, so that our retries
// and the peer's cannot phase-lock and keep missing each other.
func (p *session) dialLoop(c *candidate) {
	defer p.wg.Done()
	d := sockopt.Dialer(p.e.localFor(c.addr))
	d.KeepAlive = -1 // only the winner needs keepalive; finish sets it
	for {
		if !p.waitIdle(c) {
			return
		}
		n := p.countAttempt(c)
		p.e.emit(Event{Kind: EventAttempt, Addr: c.addr, Attempt: n})
		actx, cancel := context.WithTimeout(p.ctx, p.cfg.attemptTimeout)
		nc, err := d.DialContext(actx, "tcp", c.addr.String())
		cancel()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			pause := p.cfg.jitter()
			if isAddrBusy(err) {
				// Our port already holds this 4-tuple: an accepted
				// connection being verified, or a socket the kernel has
				// not released yet. Give it time rather than spin.
				pause += p.cfg.jitter()
			}
			p.attemptFailed(c, n, fmt.Errorf("dialing %v from %v (attempt %d): %w", c.addr, d.LocalAddr, n, err))
			if !p.sleep(pause) {
				return
			}
			continue
		}
		v, err := p.run(nc.(*net.TCPConn), nil)
		switch v {
		case verdictWon, verdictDone:
			return
		case verdictDrop:
			p.drop(c, fmt.Errorf("candidate %v (attempt %d): %w", c.addr, n, err))
			return
		}
		p.attemptFailed(c, n, fmt.Errorf("verifying %v (attempt %d): %w", c.addr, n, err))
		if !p.sleep(p.cfg.jitter()) {
			return
		}
	}
}

// jitter is a random pause in the configured range.
func (c *config) jitter() time.Duration {
	if c.jitterMax <= c.jitterMin {
		return c.jitterMin
	}
	return c.jitterMin + rand.N(c.jitterMax-c.jitterMin)
}

func (p *session) countAttempt(c *candidate) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.attempts++
	return c.attempts
}

func (p *session) attemptFailed(c *candidate, n int, err error) {
	p.mu.Lock()
	c.err = err
	p.mu.Unlock()
	p.e.emit(Event{Kind: EventAttempt, Addr: c.addr, Attempt: n, Err: err})
}

// waitIdle blocks while an accepted connection from c is being verified.
func (p *session) waitIdle(c *candidate) bool {
	for {
		p.mu.Lock()
		busy := c.busy
		p.mu.Unlock()
		if busy == 0 {
			return p.ctx.Err() == nil
		}
		select {
		case <-c.wake:
		case <-p.ctx.Done():
			return false
		}
	}
}

// sleep pauses for d unless the punch ends first.
func (p *session) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}
