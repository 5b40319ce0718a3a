package punch

import (
	"context"
	"fmt"
	"sync"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// codeGate retires a one-time code: after one successful connection, or
// after codeMaxFailures failed handshakes. Every failed handshake counts,
// not only a refused certificate: a peer that ran CPace and then hung up
// has still had its online guess.
type codeGate struct {
	mu       sync.Mutex
	used     bool
	failures int
}

// secure authenticates a punched connection for the Listener. It reports
// false when the connection is not to be delivered (it is closed then).
func (l *Listener) secure(ctx context.Context, raw *Conn, pi rendezvous.PeerInfo) (*Conn, bool) {
	code := l.cfg.auth.mode == AuthCode
	if code && l.code.retired() {
		raw.Close()
		return nil, false
	}
	c, err := l.cfg.secure(ctx, raw, RoleControlled, pi.Tag, l.label)
	if err != nil {
		l.ep.emit(Event{Kind: EventFailed, Addr: raw.info.Remote, Err: err})
		if code && l.code.fail() {
			l.retire(fmt.Errorf("%w after %d failed attempts (wrong code, or someone guessing it): start again with a new code", ErrCodeRetired, codeMaxFailures))
		}
		return nil, false
	}
	if !code {
		return c, true
	}
	if !l.code.claim() {
		c.Close()
		return nil, false
	}
	// One-shot: hand this connection to Accept, then stop.
	l.final <- c
	l.retire(fmt.Errorf("%w: it was used for one connection", ErrCodeRetired))
	return nil, false
}

// retire ends the listener with err and frees the nameplate at once.
func (l *Listener) retire(err error) {
	l.stop(err)
	go l.reg.Close()
}

func (g *codeGate) retired() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used || g.failures >= codeMaxFailures
}

// fail counts a failed attempt; it reports true when that retires the code.
func (g *codeGate) fail() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used {
		return false
	}
	g.failures++
	return g.failures == codeMaxFailures
}

// claim takes the code's one connection; false if it is already taken or
// retired.
func (g *codeGate) claim() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used || g.failures >= codeMaxFailures {
		return false
	}
	g.used = true
	return true
}
