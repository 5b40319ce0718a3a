package punch

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

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
	nominee      *rawConn   // controlling: the connection our nomination went to
	spares       []*rawConn // controlling: verified, kept in case the nominee fails
	winner       *rawConn
	wonAt        time.Time
	won          chan struct{} // closed when winner is set
	exhausted    chan struct{} // closed when no candidate and no accepted connection is left
	exhaustedSet bool

	relay        *Relay // nil: no relay for this session (relay.go)
	relayOnly    bool   // RelayAlways: no direct attempts
	relayPending bool   // the relay may still deliver: the punch is not exhausted
	relayErr     error  // why relaying did not work, for the failure
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

// rawConn is one connection the kernel completed, on its way to verification.
type rawConn struct {
	c             *net.TCPConn
	local, remote netip.AddrPort
	dialed        bool
	method        Method
	relay         *rendezvous.RelayConn // set instead of c for the relay leg (relay.go)
}

// stream is what verification needs of a connection, direct or relayed.
type stream interface {
	net.Conn
	CloseWrite() error
}

func (rc *rawConn) conn() stream {
	if rc.relay != nil {
		return rc.relay
	}
	return rc.c
}

// Punch is NewEndpoint + Endpoint.Punch + Close for a single punch.
func Punch(ctx context.Context, local netip.AddrPort, s Session, opts ...Option) (*Conn, error) {
	e, err := NewEndpoint(ctx, local, opts...)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Punch(ctx, s)
}

// Punch dials every candidate of s from the Endpoint's port, again and again
// with jittered pauses, while the Endpoint accepts; verifies every connection
// the kernel completes; and returns the one the controlling peer nominated.
// All other connections are closed with linger 0. It returns when a
// connection is nominated, when every candidate proved useless, or when ctx
// ends, leaving no goroutine or socket behind. A failure is an *Error.
func (e *Endpoint) Punch(ctx context.Context, s Session) (*Conn, error) {
	start := time.Now()
	if !s.Role.valid() {
		return nil, fmt.Errorf("punch: session role %v is neither controlling nor controlled", s.Role)
	}
	p := e.newSession(s, start)
	p.setupRelay(s)
	if p.live == 0 && !p.relayPending {
		return nil, p.failure(nil)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(e.ctx, cancel)
	defer stopOnClose()
	p.ctx = pctx // before register: accepted connections may be adopted at once
	if err := e.register(p); err != nil {
		return nil, err
	}

	for _, c := range p.order {
		if !c.dropped && !p.relayOnly {
			p.wg.Add(1)
			go p.dialLoop(c)
		}
	}
	p.startRelay()
	select {
	case <-p.won:
	case <-p.exhausted:
	case <-pctx.Done():
	}
	p.mu.Lock()
	p.ended = true
	p.mu.Unlock()
	e.unregister(p)
	cancel()
	p.wg.Wait()

	if p.winner != nil {
		if p.winner.relay != nil {
			return p.finishRelay(p.winner), nil
		}
		return p.finish(p.winner), nil
	}
	var cause error
	switch {
	case ctx.Err() != nil:
		cause = ctx.Err()
	case e.ctx.Err() != nil:
		cause = fmt.Errorf("endpoint %v closed: %w", e.addr, net.ErrClosed)
	}
	return nil, p.failure(cause)
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
	}
	for _, a := range s.Candidates {
		a = unmap(a)
		if _, dup := p.cands[a]; dup {
			continue
		}
		c := &candidate{addr: a, wake: make(chan struct{}, 1)}
		p.cands[a] = c
		p.order = append(p.order, c)
		switch {
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
	case p.peerRejected:
		e.Kind = ErrPeerRejected
	case p.live == 0:
		e.Kind = ErrNoCandidates
	}
	return e
}
