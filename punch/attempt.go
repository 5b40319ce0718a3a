package punch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// dialLoop dials one candidate from the Endpoint's port until the punch ends
// or the candidate is dropped. A SYN that got no answer within the attempt
// timeout is sent again: by the kernel, on the same socket, where the kernel
// lets us fix its retransmission timer (see [sockopt.RetransmitSYN]), or else
// by a fresh attempt instead of waiting for the kernel's backoff. After a
// refusal the pause is random, so that our retries and the peer's cannot
// phase-lock and keep missing each other.
func (p *session) dialLoop(c *candidate) {
	defer p.wg.Done()
	d := sockopt.Dialer(p.e.localFor(c.addr))
	d.KeepAlive = -1                       // only the winner needs keepalive; finish sets it
	var sock atomic.Pointer[attemptSocket] // the attempt in progress, for attemptWatch
	d.Control = func(network, address string, rc syscall.RawConn) error {
		if err := sockopt.Control(network, address, rc); err != nil {
			return err
		}
		// An attempt given up mid-handshake must free its 4-tuple at once,
		// or it lingers in FIN-WAIT-1 and every later attempt to this
		// candidate fails with EADDRNOTAVAIL (seen in the lab with 5%
		// loss). finish restores a normal close on the winner.
		if err := sockopt.AbortOnClose(network, address, rc); err != nil {
			return err
		}
		s := &attemptSocket{rc: rc}
		if p.cfg.attemptTimeout >= sockopt.MinRetransmitInterval {
			err := sockopt.RetransmitSYN(rc, p.cfg.attemptTimeout)
			s.kernelRetries = err == nil
			if err != nil && !errors.Is(err, sockopt.ErrNoRetransmitControl) {
				p.cfg.logger.Debug("SYN retransmission left to the kernel's defaults", "addr", c.addr, "err", err)
			}
		}
		sock.Store(s)
		return nil
	}
	for {
		if !p.waitIdle(c) {
			return
		}
		if !p.waitSYN(p.ctx) || p.hasPeerLeft() { // budget.go, cancel.go
			return
		}
		n := p.countAttempt(c)
		p.emit(Event{Kind: EventAttempt, Addr: c.addr, Attempt: n})
		sock.Store(nil)
		actx, cancel := context.WithCancel(p.ctx)
		// Each SYN the kernel retransmits counts as an attempt of its own,
		// so that reports read the same whichever way SYNs are resent.
		resent := func() {
			p.attemptFailed(c, n, p.timeoutErr(c, d, n))
			n = p.countAttempt(c)
			p.emit(Event{Kind: EventAttempt, Addr: c.addr, Attempt: n})
		}
		stopWatch := p.attemptWatch(c, &sock, resent, cancel)
		began := time.Now()
		nc, err := d.DialContext(actx, "tcp", c.addr.String())
		timedOut := stopWatch()
		cancel()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			pause := p.cfg.jitter()
			switch {
			case timedOut:
				// Our SYN was in flight the whole attempt, so there is no
				// phase to unlock: re-dial at once. A pause would be a
				// window in which the peer's SYN crosses our NAT (its
				// entry still holding the old attempt's sequence number)
				// and meets our listener, whose SYN-ACK, with a new
				// sequence number, conntrack then drops as INVALID.
				pause = 0
				err = p.timeoutErr(c, d, n)
			case errors.Is(err, syscall.ECONNREFUSED):
				pause = p.cfg.refusedPause(time.Since(began))
				err = fmt.Errorf("dialing %v from %v (attempt %d): %w", c.addr, d.LocalAddr, n, err)
			case isAddrBusy(err):
				// Our port already holds this 4-tuple: an accepted
				// connection being verified, or a socket the kernel has
				// not released yet. Give it time rather than spin.
				pause += p.cfg.jitter()
				fallthrough
			default:
				err = fmt.Errorf("dialing %v from %v (attempt %d): %w", c.addr, d.LocalAddr, n, err)
			}
			p.attemptFailed(c, n, err)
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

// attemptSocket is the socket of the attempt in progress.
type attemptSocket struct {
	rc            syscall.RawConn
	kernelRetries bool // the kernel resends our SYN every attempt timeout
}

// attemptWatch looks at the attempt on sock every attempt timeout. An
// attempt still in SYN-SENT has had its SYN or the peer's lost: while the
// kernel resends our SYN within the attempt timeout on its own
// (kernelRetries, or its current retransmission timeout says so), the watch
// reports that through resent and lets it; otherwise it ends the attempt
// (by cancel), and a fresh one beats the kernel's exponential backoff. An attempt that has
// received the peer's SYN (SYN-RECV: a simultaneous open under way, its
// SYN-ACK lost) is always left to the kernel's retransmissions: a new
// socket on the same 4-tuple would start with a new initial sequence
// number, which a Linux NAT that saw the first handshake drops as out of
// window (conntrack INVALID) for minutes. Where the kernel does not tell
// the state, every attempt ends at the timeout.
func (p *session) attemptWatch(c *candidate, sock *atomic.Pointer[attemptSocket], resent func(), cancel context.CancelFunc) (stop func() (timedOut bool)) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var fired bool
	go func() {
		defer close(finished)
		t := time.NewTimer(p.cfg.attemptTimeout)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if s := sock.Load(); s != nil {
				st, err := sockopt.State(s.rc)
				switch {
				case err != nil:
				case st == sockopt.StateSynReceived:
					p.cfg.logger.Debug("attempt in SYN-RECV: leaving the handshake to the kernel", "addr", c.addr)
					t.Reset(p.cfg.attemptTimeout)
					continue
				case st == sockopt.StateSynSent && (s.kernelRetries || p.kernelResendsSoon(s)):
					resent()
					t.Reset(p.cfg.attemptTimeout)
					continue
				}
			}
			fired = true
			cancel()
			return
		}
	}()
	return func() bool {
		close(done)
		<-finished
		return fired
	}
}

// kernelResendsSoon says whether the kernel, left alone, resends the SYN of
// s within the attempt timeout: on Linux 6.7 and later without
// [sockopt.RetransmitSYN], the first four resends come after one second
// each. Until then a fresh socket, with its new sequence number, would buy
// nothing and risk what RetransmitSYN avoids.
func (p *session) kernelResendsSoon(s *attemptSocket) bool {
	rto, err := sockopt.RetransmitTimeout(s.rc)
	return err == nil && rto > 0 && rto <= p.cfg.attemptTimeout
}

// timeoutErr is the error of attempt n to c when it got no answer in time.
func (p *session) timeoutErr(c *candidate, d *net.Dialer, n int) error {
	return fmt.Errorf("dialing %v from %v (attempt %d): no answer within %v: %w", c.addr, d.LocalAddr, n, p.cfg.attemptTimeout, errAttemptTimeout)
}

// refusedPause is the pause after an attempt the far side refused (RST)
// after took. A NAT that answers SYNs with RST also forgets the mapping, so
// the punch needs both SYNs in flight at once: a window of about one round
// trip, which took measures. Pausing a random 0–2 of those keeps our SYN in
// flight about half the time, unsynchronised with the peer's, instead of a
// fraction RTT/jitter of it (0.1% at LAN round trips with the default
// 25–125 ms). Bounded below (refusedFloor, 10 ms) so that a closed port on
// a short path is not dialed hundreds of times a second.
func (c *config) refusedPause(took time.Duration) time.Duration {
	const floor = refusedFloor
	limit := min(max(2*took, floor), c.jitterMax)
	if limit <= 0 {
		return floor // WithRetryJitter(0, 0): no random part
	}
	return floor + rand.N(limit)
}

// errAttemptTimeout: an attempt got no answer within the attempt timeout.
var errAttemptTimeout = errors.New("attempt timed out")

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
	p.emit(Event{Kind: EventAttempt, Addr: c.addr, Attempt: n, Err: err})
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
