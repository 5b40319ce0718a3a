package punch

import (
	"errors"
	"time"
)

// ErrPeerLeft: the rendezvous told us the peer left before the punch was
// done (its control connection closed), so the punch stopped at once.
var ErrPeerLeft = errors.New("punch: the peer left")

// ErrBusy: a Listener refused a dialer because it was running its cap of
// punches (see [WithMaxPunches]).
var ErrBusy = errors.New("punch: listener busy")

const (
	cancelledTTL = time.Minute
	cancelledMax = 4096
)

// cancelSession stops the punch of tag because its peer left. A punch not
// started yet (its peer info still queued) is remembered, bounded, so that
// it stops as it starts. A connection already in verification is let
// finish: the peer may have returned with it a moment before leaving.
func (e *Endpoint) cancelSession(tag [16]byte) {
	e.mu.Lock()
	p := e.punches[tag]
	if p == nil {
		now := time.Now()
		if len(e.cancelled) >= cancelledMax {
			for t, at := range e.cancelled {
				if now.Sub(at) > cancelledTTL || len(e.cancelled) >= cancelledMax {
					delete(e.cancelled, t)
				}
			}
		}
		e.cancelled[tag] = now
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	p.peerGone()
}

// takeCancelled reports (and forgets) whether tag was cancelled before its
// punch began. e.mu is held.
func (e *Endpoint) takeCancelledLocked(tag [16]byte) bool {
	_, ok := e.cancelled[tag]
	delete(e.cancelled, tag)
	return ok
}

func (p *session) peerGone() {
	p.mu.Lock()
	p.peerLeft = true
	stop := p.verifying == 0 && p.winner == nil
	p.mu.Unlock()
	if stop {
		p.stop()
	}
}

// verifyBegin and verifyEnd bracket a hello exchange, so a cancel lets it
// finish.
func (p *session) verifyBegin() {
	p.mu.Lock()
	p.verifying++
	p.mu.Unlock()
}

func (p *session) verifyEnd() {
	p.mu.Lock()
	p.verifying--
	stop := p.peerLeft && p.verifying == 0 && p.winner == nil
	p.mu.Unlock()
	if stop {
		p.stop()
	}
}

func (p *session) hasPeerLeft() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peerLeft
}
