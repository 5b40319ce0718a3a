package rendezvous

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// relayHub is the server's table of relay tokens and sessions, and the
// accounting of the relay limits. Tokens are issued in time order with one
// TTL, so expiry is a queue; the table is capped so that pairings alone
// cannot grow it without bound.
type relayHub struct {
	cfg            *relayConfig
	log            *slog.Logger
	v4Bits, v6Bits int // the source prefix of the per-source limit

	mu       sync.Mutex
	tokens   map[RelayToken]*relaySession
	expiry   []*relaySession // in issue order
	active   int             // sessions holding slots (a leg joined, not ended)
	bySource map[netip.Prefix]int
	closing  bool
}

// maxRelayTokens bounds the token table: tokens are issued at every
// pairing but used only by the few that relay.
const maxRelayTokens = 1 << 16

func newRelayHub(cfg *relayConfig, log *slog.Logger, v4Bits, v6Bits int) *relayHub {
	return &relayHub{cfg: cfg, log: log, v4Bits: v4Bits, v6Bits: v6Bits,
		tokens: make(map[RelayToken]*relaySession), bySource: make(map[netip.Prefix]int)}
}

// sourcePrefix is what the per-source relay limit counts: the server's
// source prefix (WithSourcePrefix: an IPv4 address and an IPv6 /64 by
// default), as for its other per-source limits.
func (h *relayHub) sourcePrefix(a netip.Addr) netip.Prefix {
	return sourcePrefix(a, h.v4Bits, h.v6Bits)
}

// issue makes a token for a pairing of a dialer seen at dialer and a
// listener seen at listener; only legs from those sources may use it. The
// zero token means none (relaying off, or the table full).
func (h *relayHub) issue(dialer, listener netip.Addr) RelayToken {
	if h == nil || !h.cfg.enabled {
		return RelayToken{}
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
	if h.closing || len(h.tokens) >= maxRelayTokens {
		return RelayToken{}
	}
	s := &relaySession{
		hub:     h,
		token:   newRelayToken(),
		expires: now.Add(h.cfg.tokenTTL),
		joined:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.want[0], s.want[1] = h.sourcePrefix(dialer), h.sourcePrefix(listener)
	s.log = h.log.With("relay", s.token.String())
	h.tokens[s.token] = s
	h.expiry = append(h.expiry, s)
	return s.token
}

// expireLocked forgets tokens whose time is up and that no leg took.
func (h *relayHub) expireLocked(now time.Time) {
	i := 0
	for ; i < len(h.expiry); i++ {
		s := h.expiry[i]
		if now.Before(s.expires) {
			break
		}
		if s.legs[0] == nil && s.legs[1] == nil && h.tokens[s.token] == s {
			delete(h.tokens, s.token)
		}
	}
	h.expiry = h.expiry[i:]
}

// errRelay is a refused leg: the code and reason of the error response.
type errRelay struct {
	code   int
	reason string
}

func (e *errRelay) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// join admits c (its TCP connection tc, its Relay request req) as the leg
// of role for token. first says the leg must wait for its partner;
// otherwise the session is complete. The leg's request, and for a first
// leg its watch, are stored under the hub's lock: the partner may run the
// session the moment it joins.
func (h *relayHub) join(c *peerConn, tc *net.TCPConn, req *message, role Role) (s *relaySession, first bool, err *errRelay) {
	token := req.RelayToken
	if !h.cfg.enabled {
		return nil, false, &errRelay{CodeForbidden, "this server does not relay"}
	}
	refused := &errRelay{CodeForbidden, "relay token unknown, expired or already used"}
	now := time.Now()
	src := h.sourcePrefix(c.remote.Addr())
	i := 0
	if role == RoleControlled {
		i = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
	if h.closing {
		return nil, false, &errRelay{CodeShuttingDown, "server shutting down"}
	}
	s = h.tokens[token]
	switch {
	case s == nil, s.state >= relayEnded:
		return nil, false, refused
	case s.legs[i] != nil:
		return nil, false, &errRelay{CodeForbidden, "relay token already in use for the " + role.String() + " side"}
	case s.want[i] != src:
		return nil, false, &errRelay{CodeForbidden, "relay token presented from another address than its holder's"}
	case s.legs[1-i] == nil && !now.Before(s.expires):
		return nil, false, refused
	}
	// Slots: the session takes one of the total when its first leg
	// joins, and one per distinct source prefix.
	newSource := true
	for _, p := range s.sources {
		newSource = newSource && p != src
	}
	first = s.legs[1-i] == nil
	if first && h.cfg.sessions > 0 && h.active >= h.cfg.sessions {
		return nil, false, &errRelay{CodeCapacity, "relay at its session limit"}
	}
	if newSource && h.cfg.perSource > 0 && h.bySource[src] >= h.cfg.perSource {
		return nil, false, &errRelay{CodeTooManyConns, "too many relay sessions from your address"}
	}
	if first {
		h.active++
	}
	if newSource {
		h.bySource[src]++
		s.sources = append(s.sources, src)
	}
	s.legs[i] = c
	s.reqs[i] = req
	if first {
		s.peek[i] = startPeek(tc)
		s.state = relayPending
		// The partner's wait is bounded by the token's life.
		if floor := now.Add(time.Second); s.expires.Before(floor) {
			s.expires = floor
		}
	} else {
		s.state = relayJoined
	}
	return s, first, nil
}

// release ends s's hold on the limits and forgets its token: a token
// serves one session.
func (h *relayHub) release(s *relaySession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.state == relayReleased {
		return
	}
	if h.tokens[s.token] == s {
		delete(h.tokens, s.token)
	}
	if s.legs[0] != nil || s.legs[1] != nil {
		h.active--
	}
	for _, p := range s.sources {
		if h.bySource[p]--; h.bySource[p] <= 0 {
			delete(h.bySource, p)
		}
	}
	s.state = relayReleased
}

// shutdown refuses new legs and tokens from now on.
func (h *relayHub) shutdown() {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
}

// stats is for tests and logs.
func (h *relayHub) stats() (tokens, active int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.tokens), h.active
}
