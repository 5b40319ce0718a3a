package punch

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Nomination. The controlling side decides which connection both peers keep;
// "who dialed" cannot decide it, since after a simultaneous open both did.
//
// To reach the latency floor (one round trip for the SYNs, half a round trip
// for the hello), the controlling side nominates optimistically: the first
// connection it sends a hello on carries the nominated flag, and the
// controlled side takes such a connection the moment its hello checks out.
// Only when that connection fails does the controlling side fall back to a
// one-byte NOMINATE on a connection that already verified (a spare) or on the
// next one to verify. At most one nomination is ever outstanding, so the two
// sides cannot pick different connections.

// claim makes rc the connection our hello nominates, if no nomination is
// outstanding.
func (p *session) claim(rc *rawConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.winner == nil && p.nominee == nil {
		p.nominee = rc
		return true
	}
	return false
}

// nominate settles a verified connection on the controlling side.
func (p *session) nominate(rc *rawConn) (verdict, error) {
	p.mu.Lock()
	switch {
	case p.winner != nil:
		p.mu.Unlock()
		return verdictDone, nil
	case p.nominee == rc:
		p.winLocked(rc)
		p.mu.Unlock()
		return verdictWon, nil
	case p.nominee == nil:
		// The optimistic nominee failed and nothing else verified before
		// this one: nominate it explicitly.
		if err := p.sendNominate(rc); err != nil {
			p.mu.Unlock()
			return p.ioVerdict(err)
		}
		p.nominee = rc
		p.winLocked(rc)
		p.mu.Unlock()
		return verdictWon, nil
	}
	// Another nomination is outstanding. Keep this connection, silent, in
	// case that one fails; release promotes it then. It must not be read: once
	// nominated, the peer's next bytes are the application's.
	p.spares = append(p.spares, rc)
	p.mu.Unlock()
	<-p.ctx.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.winner == rc {
		return verdictWon, nil
	}
	return verdictDone, nil
}

// release withdraws a connection that did not win. If it held the
// outstanding nomination, the nomination moves to the first spare that takes
// a NOMINATE.
func (p *session) release(rc *rawConn) {
	if p.role != RoleControlling {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spares = slices.DeleteFunc(p.spares, func(s *rawConn) bool { return s == rc })
	if p.nominee != rc || p.winner != nil {
		return
	}
	p.nominee = nil
	for len(p.spares) > 0 {
		s := p.spares[0]
		p.spares = p.spares[1:]
		if err := p.sendNominate(s); err != nil {
			// Its own goroutine closes it when the punch ends.
			p.cfg.logger.Debug("punch: nominating spare", "remote", s.remote, "err", err)
			continue
		}
		p.nominee = s
		p.winLocked(s)
		return
	}
}

// accept takes the controlling peer's nomination on the controlled side.
func (p *session) accept(rc *rawConn) (verdict, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.winner != nil {
		return verdictDone, errors.New("the peer nominated a second connection")
	}
	p.winLocked(rc)
	return verdictWon, nil
}

func (p *session) winLocked(rc *rawConn) {
	p.winner = rc
	p.wonAt = time.Now()
	close(p.won)
}

// sendNominate writes the one-byte NOMINATE and the session's early bytes.
// It runs under p.mu: a few hundred bytes into an idle socket's empty send
// buffer do not block, and the deadline bounds it regardless.
func (p *session) sendNominate(rc *rawConn) error {
	if err := rc.conn().SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("nominating %v: %w", rc.remote, err)
	}
	if _, err := rc.conn().Write(p.appendEarly(rc, []byte{nominateByte})); err != nil {
		return fmt.Errorf("nominating %v: %w", rc.remote, err)
	}
	return nil
}
