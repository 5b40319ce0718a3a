package punch

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Role is a peer's part in a punch, assigned by the rendezvous so that it
// never depends on who dialed: after a simultaneous open both peers dialed.
type Role uint8

const (
	RoleControlling Role = 1 // nominates the connection both peers keep (the dialer side)
	RoleControlled  Role = 2 // keeps the connection it is told to (the listener side)
)

func (r Role) String() string {
	switch r {
	case RoleControlling:
		return "controlling"
	case RoleControlled:
		return "controlled"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

func (r Role) valid() bool { return r == RoleControlling || r == RoleControlled }

// Session is what both peers agreed on before punching.
type Session struct {
	Candidates []netip.AddrPort // the peer's endpoints: observed public one and its host (LAN) ones
	Role       Role             // our role; the peer must hold the other one
	Tag        [16]byte         // random, from the rendezvous; both peers hold the same tag

	// Self lists our own endpoint as others see it (the one the rendezvous
	// observed, behind a NAT its public mapping). A candidate equal to one
	// is us, not the peer: two processes on one host given the same local
	// port get the same mapping. Such candidates are never dialed.
	Self []netip.AddrPort

	// Relay, when set, is the rendezvous server's relay for this session:
	// used when no direct connection verified within the relay budget
	// (see [WithRelay]).
	Relay *Relay

	// early, on the controlling side, gives bytes to send right behind
	// the nominating hello or NOMINATE byte, in the same write: the secure
	// link's first flight (secure.go), so it costs no round trip of its
	// own. They are the application's first bytes on that connection; the
	// controlled side reads exact lengths and leaves them in the stream.
	early func() []byte

	// policy, set by Listen and Dial, withholds candidates the rendezvous
	// should not have handed out (candpolicy.go). Endpoint.Punch callers
	// choose their candidates themselves.
	policy *candPolicy

	// quiet: the punch is an upgrade's background attempt (upgrade.go):
	// its steps are logged at debug level, not handed to WithEvents.
	quiet bool
}

// unmap normalises IPv4-mapped IPv6 addresses, which a dual-stack socket
// reports for IPv4 peers, so that equal endpoints compare equal.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// session is the state of one Endpoint.Punch.
type session struct {
	e     *Endpoint
	cfg   *config
	tag   [16]byte
	role  Role
	start time.Time
	ctx   context.Context // ends when the punch ends, whatever the reason
	wg    sync.WaitGroup  // every goroutine working for this punch

	order []*candidate                  // the session's candidates, deduplicated, in order
	cands map[netip.AddrPort]*candidate // read-only after newSession

	mu           sync.Mutex
	ended        bool // accepted connections are no longer adopted
	live         int  // candidates not dropped
	inflight     int  // accepted connections being verified
	selfConnects int
	peerRejected bool
	early        func() []byte // Session.early
	nominee      *rawConn      // controlling: the connection our nomination went to
	spares       []*rawConn    // controlling: verified, kept in case the nominee fails
	winner       *rawConn
	wonAt        time.Time
	won          chan struct{} // closed when winner is set
	exhausted    chan struct{} // closed when no candidate and no accepted connection is left
	exhaustedSet bool

	relay        *Relay // nil: no relay for this session (relay.go)
	relayOnly    bool   // RelayAlways: no direct attempts
	relayPending bool   // the relay may still deliver: the punch is not exhausted
	relayErr     error  // why relaying did not work, for the failure
	// cancel.go and budget.go
	stop      context.CancelFunc // ends the punch
	peerLeft  bool               // the rendezvous said the peer left
	verifying int                // hello exchanges in progress
	syns      *synBucket
	quiet     bool        // Session.quiet
	policy    *candPolicy // Session.policy: the upgrade's rounds screen the peer's new candidates with it
}

// emit hands ev to the Endpoint's events, unless the punch is quiet.
func (p *session) emit(ev Event) {
	if p.quiet {
		p.cfg.logger.Debug("upgrade punch event", "kind", ev.Kind.String(), "addr", ev.Addr, "err", ev.Err)
		return
	}
	p.e.emit(ev)
}

// candidate is one remote endpoint of the session and how dialing it goes.
type candidate struct {
	addr     netip.AddrPort
	attempts int
	err      error
	dropped  bool          // never dialed again: ourselves, another host, or the peer refused
	self     bool          // dropped because it was ourselves
	busy     int           // accepted connections from addr being verified: dialing pauses
	wake     chan struct{} // signalled when busy drops
}

func (e *Endpoint) newSession(s Session, start time.Time) *session {
	p := &session{
		e:         e,
		cfg:       &e.cfg,
		tag:       s.Tag,
		role:      s.Role,
		start:     start,
		cands:     make(map[netip.AddrPort]*candidate),
		won:       make(chan struct{}),
		exhausted: make(chan struct{}),
		early:     s.early,
		quiet:     s.quiet,
		policy:    s.policy,
		syns:      newSYNBucket(e.cfg.synRate),
	}
	for i, a := range s.Candidates {
		a = unmap(a)
		if _, dup := p.cands[a]; dup {
			continue
		}
		c := &candidate{addr: a, wake: make(chan struct{}, 1)}
		p.cands[a] = c
		p.order = append(p.order, c)
		switch {
		case s.policy.check(a, i) != nil: // candpolicy.go
			c.dropped, c.err = true, fmt.Errorf("candidate %v: %w", a, errPolicy)
		case e.usable(a) != nil:
			c.dropped, c.err = true, fmt.Errorf("candidate %v: %w", a, e.usable(a))
		case (e.isSelf(a) || slices.Contains(s.Self, a)) && !e.cfg.dialSelf:
			c.dropped, c.self, c.err = true, true, fmt.Errorf("candidate %v is our own endpoint %v: %w", a, e.addr, errSelfConnect)
			p.selfConnects++
			e.emit(Event{Kind: EventSelfConnect, Addr: a, Detail: "candidate is our own endpoint; not dialed"})
		default:
			p.live++
		}
	}
	return p
}

// adopt registers an accepted connection with the punch, unless it ended.
func (p *session) adopt() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended || p.relayOnly {
		return false
	}
	p.wg.Add(1)
	p.inflight++
	return true
}

// serveAccepted verifies an accepted connection whose hello h carries our tag.
func (p *session) serveAccepted(c *net.TCPConn, remote netip.AddrPort, h hello) {
	defer p.wg.Done()
	cand := p.cands[remote]
	if cand != nil {
		// A dial to the same candidate would only collide with this
		// connection's 4-tuple (EADDRNOTAVAIL): pause it meanwhile.
		p.mu.Lock()
		cand.busy++
		p.mu.Unlock()
	}
	v, err := p.run(c, &h)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if cand != nil {
		cand.busy--
		select {
		case cand.wake <- struct{}{}:
		default:
		}
		if v == verdictDrop {
			p.dropLocked(cand, err)
		} else if err != nil {
			cand.err = err
		}
	}
	p.checkExhaustedLocked()
}

func (p *session) drop(c *candidate, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked(c, err)
}

func (p *session) dropLocked(c *candidate, err error) {
	if c.dropped {
		return
	}
	c.dropped, c.err = true, err
	c.self = isSelfErr(err)
	p.live--
	p.checkExhaustedLocked()
}

func (p *session) checkExhaustedLocked() {
	if p.live == 0 && p.inflight == 0 && !p.relayPending && !p.exhaustedSet {
		p.exhaustedSet = true
		close(p.exhausted)
	}
}

// failure describes a punch that ended without a winner.
func (p *session) failure(cause error) *Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &Error{Kind: ErrTimeout, Cause: cause, Relay: p.relayErr}
	allSelf := len(p.order) > 0
	for _, c := range p.order {
		e.Candidates = append(e.Candidates, CandidateError{Addr: c.addr, Attempts: c.attempts, Err: c.err})
		allSelf = allSelf && c.self
	}
	switch {
	case len(p.order) == 0:
		e.Kind = ErrNoCandidates
	case p.live == 0 && allSelf:
		e.Kind = ErrOnlySelfConnects
	case p.peerLeft: // cancel.go
		e.Kind = ErrPeerLeft
	case p.peerRejected:
		e.Kind = ErrPeerRejected
	case p.live == 0:
		e.Kind = ErrNoCandidates
	}
	return e
}
