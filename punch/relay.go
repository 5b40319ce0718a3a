package punch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// Relay fallback. When no direct connection verifies within the relay
// budget, or at once when the NAT classes in the peer info say none can
// (both peers see the same two classes, so both decide alike), both peers
// open a leg to the rendezvous server's relay
// (rendezvous.DialRelay) and the relayed stream takes part in the punch
// like one more connection: the same hello exchange, and the controlling
// side's nomination decides between it and a direct connection that
// verifies meanwhile, so the two peers can never pick different paths.
// The relay sits below whatever the application layers on the connection
// (TLS): the server carries only what the peers send.

// RelayMode says when a punch may use the rendezvous server's relay.
type RelayMode uint8

const (
	// RelayAuto (the default) relays when no direct connection verified
	// within the relay budget ([WithRelayBudget]), and at once, with no
	// direct attempt, when both sides' measured NAT classes rule a direct
	// path out ([DirectPossible]).
	RelayAuto RelayMode = iota
	// RelayNever never relays: no direct path is a failure.
	RelayNever
	// RelayAlways relays at once and makes no direct attempt.
	RelayAlways
)

func (m RelayMode) String() string {
	switch m {
	case RelayAuto:
		return "auto"
	case RelayNever:
		return "never"
	case RelayAlways:
		return "always"
	}
	return fmt.Sprintf("RelayMode(%d)", uint8(m))
}

// ParseRelayMode parses "auto", "never" or "always".
func ParseRelayMode(s string) (RelayMode, error) {
	for _, m := range []RelayMode{RelayAuto, RelayNever, RelayAlways} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("relay mode %q: use auto, never or always", s)
}

// DefaultRelayBudget is how long RelayAuto waits for a direct connection:
// direct punches that work at all finish within about three round trips,
// and waiting longer only stalls the pairs that cannot punch.
const DefaultRelayBudget = 2 * time.Second

// WithRelay sets when Listen, Dial and [Endpoint.Punch] relay (default
// RelayAuto). Relaying needs a server that relays (its peer info carries a
// relay token) and a peer that relays too. A mode other than the three is
// an error naming the option.
func WithRelay(m RelayMode) Option {
	return func(c *config) {
		if m > RelayAlways {
			c.invalid("WithRelay(%v): use RelayAuto, RelayNever or RelayAlways", m)
			return
		}
		c.relayMode = m
	}
}

// WithRelayBudget sets how long RelayAuto waits for a direct connection
// before it opens the relay leg (default 2 s; d must be positive). Direct
// attempts go on meanwhile: whichever verifies first is nominated. When
// both peers' NAT classes rule a direct path out ([DirectPossible]), auto
// relays at once instead.
func WithRelayBudget(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithRelayBudget(%v): must be positive", d)
			return
		}
		c.relayBudget = d
	}
}

// Relay is a session's relay: the rendezvous server and the one-time token
// both peers got in their peer info.
type Relay struct {
	Server string
	Token  rendezvous.RelayToken
	// NoDirect, when not empty, says why no direct path can exist (see
	// [DirectPossible]): RelayAuto then relays at once and makes no direct
	// attempt, instead of waiting out the relay budget.
	NoDirect string
}

// Path says how a Conn's bytes travel.
type Path uint8

const (
	PathDirect Path = iota + 1 // a punched TCP connection between the peers
	PathRelay                  // through the rendezvous server's relay
)

func (p Path) String() string {
	switch p {
	case PathDirect:
		return "direct"
	case PathRelay:
		return "relay"
	}
	return fmt.Sprintf("Path(%d)", uint8(p))
}

// errRelayUnavailable: relaying was allowed but the server gave no token.
var errRelayUnavailable = errors.New("the rendezvous server does not relay (no relay token in the peer info)")

func (p *session) setupRelay(s Session) {
	mode := p.cfg.relayMode
	if mode == RelayNever {
		return
	}
	if s.Relay == nil || s.Relay.Token.IsZero() {
		p.relayErr = errRelayUnavailable
		if mode == RelayAlways {
			p.live = 0 // nothing to do: fail at once
		}
		return
	}
	p.relay = s.Relay
	p.relayPending = true
	if mode == RelayAlways || s.Relay.NoDirect != "" {
		p.relayOnly = true
		p.live = 0
	}
}

func (p *session) startRelay() {
	if p.relay == nil {
		return
	}
	p.wg.Add(1)
	go p.relayLoop()
}

// relayLoop waits out the budget (unless relaying always), then opens our
// leg and takes the relayed stream through verification and nomination.
func (p *session) relayLoop() {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.relayPending = false
		p.checkExhaustedLocked()
		p.mu.Unlock()
	}()
	why := "relaying as asked (--relay always)"
	if p.relay.NoDirect != "" && p.cfg.relayMode == RelayAuto {
		why = "no direct path can exist (" + p.relay.NoDirect + "); relaying through the rendezvous server at once"
	}
	if !p.relayOnly {
		budget := p.cfg.relayBudget
		t := time.NewTimer(time.Until(p.start.Add(budget)))
		select {
		case <-t.C:
		case <-p.won:
			t.Stop()
			return
		case <-p.ctx.Done():
			t.Stop()
			return
		}
		why = fmt.Sprintf("no direct connection verified within %v; relaying through the rendezvous server", budget)
	}
	p.emit(Event{Kind: EventRelaying, Detail: why})
	role := rendezvous.RoleControlled
	if p.role == RoleControlling {
		role = rendezvous.RoleControlling
	}
	leg, err := rendezvous.DialRelay(p.ctx, p.relay.Server, p.relay.Token, role, rendezvous.WithLogger(p.cfg.logger))
	if err != nil {
		if p.ctx.Err() == nil {
			p.emit(Event{Kind: EventRelayFailed, Err: err, Detail: p.afterRelayFailed()})
		}
		p.mu.Lock()
		p.relayErr = err
		p.mu.Unlock()
		return
	}
	rc := &rawConn{relay: leg, local: addrPortOf(leg.LocalAddr()), remote: addrPortOf(leg.RemoteAddr()), dialed: true}
	// The server answered the leg, so the peer's leg is in too: a cancel
	// (the peer's control connection closed) lets this exchange finish,
	// as for a direct connection in verification. The peer may have won
	// on the relay and left a moment before our hello exchange ended: its
	// nomination and its control connection's close race through the
	// server.
	p.verifyBegin()
	_ = leg.SetDeadline(time.Now().Add(p.cfg.verifyTimeout))
	stop := interruptOnDone(p.ctx, leg)
	v, err := p.exchange(rc, nil)
	stop()
	p.verifyEnd()
	if v != verdictWon {
		p.release(rc)
		leg.Close()
		if err != nil && p.ctx.Err() == nil {
			p.emit(Event{Kind: EventRelayFailed, Err: err, Detail: p.afterRelayFailed()})
			p.mu.Lock()
			p.relayErr = err
			p.mu.Unlock()
		}
	}
}

// finishRelay readies the relayed winner for the application.
func (p *session) finishRelay(w *rawConn) *Conn {
	_ = w.relay.SetDeadline(time.Time{})
	p.mu.Lock()
	info := Info{
		Local:        w.local,
		Remote:       w.remote,
		Method:       MethodRelay,
		Path:         PathRelay,
		Elapsed:      p.wonAt.Sub(p.start),
		Attempts:     make(map[netip.AddrPort]int, len(p.order)),
		SelfConnects: p.selfConnects,
	}
	for _, c := range p.order {
		info.Attempts[c.addr] = c.attempts
	}
	p.mu.Unlock()
	p.emit(Event{Kind: EventConnected, Addr: w.remote, Method: MethodRelay, Detail: "relayed by " + w.remote.String()})
	// The stream runs on the path layer, which moves it to a direct
	// connection if one verifies later (pathconn.go, upgrade.go).
	pc := newPathConn(w.relay, p.role)
	p.startUpgrade(pc)
	return &Conn{nc: pc, info: info, earlySent: w.earlySent}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return unmap(ta.AddrPort())
	}
	return netip.AddrPort{}
}

// sessionRelay is the relay for pi's session (nil when the server gave no
// token), or, when the NAT classes rule a direct path out
// ([DirectPossible]) and relaying is off or impossible, the
// ErrNoDirectPath failure to return at once.
func sessionRelay(cfg *config, server string, pi rendezvous.PeerInfo) (*Relay, error) {
	r := relayOf(server, pi)
	ok, why := DirectPossible(pi.LocalClass, pi.Class)
	switch {
	case ok:
	case r == nil || cfg.relayMode == RelayNever:
		return nil, &Error{Kind: ErrNoDirectPath, Cause: errors.New(why), Relay: relayUnavailable(cfg, r)}
	default:
		// Both peers see the same two classes, so both relay at once.
		r.NoDirect = why
	}
	return r, nil
}

// relayUnavailable is why no relay was tried, for an error's Relay field.
func relayUnavailable(cfg *config, r *Relay) error {
	if cfg.relayMode != RelayNever && r == nil {
		return errRelayUnavailable
	}
	return nil
}

// relayOf is the session's relay from a peer info, nil when the server
// gave no token.
func relayOf(server string, pi rendezvous.PeerInfo) *Relay {
	if pi.RelayToken.IsZero() {
		return nil
	}
	return &Relay{Server: server, Token: pi.RelayToken}
}

// afterRelayFailed says what goes on once the relay failed: the direct
// attempts, unless there are none (RelayAlways, or no direct path can
// exist).
func (p *session) afterRelayFailed() string {
	if p.cfg.relayMode == RelayAlways || p.relay.NoDirect != "" {
		return "no direct attempt is made"
	}
	return "direct attempts go on"
}
