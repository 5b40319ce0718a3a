package punch

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// EventKind says what an [Event] reports.
type EventKind uint8

const (
	EventRegistered  EventKind = iota + 1 // registered with the rendezvous (Listen)
	EventPeerInfo                         // the rendezvous sent the peer's candidates (Listen, Dial)
	EventAttempt                          // a SYN went out (Err nil: a dial, or the kernel resending an unanswered one) or an attempt failed (Err set)
	EventSelfConnect                      // a candidate or connection turned out to be ourselves
	EventRejected                         // a connection failed verification, on our side or the peer's
	EventVerified                         // a connection passed the hello exchange
	EventConnected                        // the nominated connection: the punch succeeded
	EventFailed                           // a punch a Listener started for a dialer failed (Err says why)
	EventRelaying                         // opening the relay leg (Detail says why)
	EventRelayFailed                      // the relay did not connect (Err says why; Detail what goes on: direct attempts, or none)
	EventRefused                          // a Listener refused a dialer without punching (Err matches ErrBusy)
	EventUpgraded                         // a relayed Conn moved to a direct connection (Elapsed: how long it was relayed; Upgrade: the move's account). It may come from inside a Read of that Conn: the callback must not read it
)

func (k EventKind) String() string {
	switch k {
	case EventRegistered:
		return "registered"
	case EventPeerInfo:
		return "peer-info"
	case EventAttempt:
		return "attempt"
	case EventSelfConnect:
		return "self-connect"
	case EventRejected:
		return "rejected"
	case EventVerified:
		return "verified"
	case EventConnected:
		return "connected"
	case EventFailed:
		return "failed"
	case EventRelaying:
		return "relaying"
	case EventRelayFailed:
		return "relay-failed"
	case EventRefused:
		return "refused"
	case EventUpgraded:
		return "upgraded"
	}
	return "unknown"
}

// Event is one step of a punch, for progress output and traces.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Local   netip.AddrPort // the endpoint (reused local port) the event happened on
	Addr    netip.AddrPort // the remote endpoint concerned, if any
	Attempt int            // the dial attempt number for this Addr, if any
	Method  Method         // for EventVerified and EventConnected
	Err     error
	Detail  string
	Elapsed time.Duration // for EventUpgraded: from the relayed connection to the move
	Upgrade Upgrade       // for EventUpgraded: when, which round, and the stalls the move cost

	// For EventPeerInfo: the peer's candidates as the rendezvous sent them
	// (the endpoint it observed first), and our own endpoint as the
	// rendezvous observed it. A NAT that gave an observed endpoint another
	// port than the local one may be symmetric.
	Candidates []netip.AddrPort
	Observed   netip.AddrPort
	// For EventPeerInfo: the NAT classes measured from our port and the
	// peer's ("not measured" when a side or the server could not tell).
	LocalClass, PeerClass rendezvous.NATClass
}

// emit logs ev and hands it to the WithEvents callback. The mutex serializes
// callbacks so applications can print without locking.
func (e *Endpoint) emit(ev Event) {
	ev.Time = time.Now()
	ev.Local = e.addr
	if e.cfg.logger.Enabled(context.Background(), slog.LevelDebug) {
		attrs := []any{"kind", ev.Kind.String(), "local", e.addr}
		if ev.Addr.IsValid() {
			attrs = append(attrs, "addr", ev.Addr)
		}
		if ev.Attempt > 0 {
			attrs = append(attrs, "attempt", ev.Attempt)
		}
		if ev.Method != 0 {
			attrs = append(attrs, "method", ev.Method.String())
		}
		if ev.Err != nil {
			attrs = append(attrs, "err", ev.Err)
		}
		if ev.Detail != "" {
			attrs = append(attrs, "detail", ev.Detail)
		}
		e.cfg.logger.Debug("punch event", attrs...)
	}
	if e.cfg.events != nil {
		e.evMu.Lock()
		defer e.evMu.Unlock()
		e.cfg.events(ev)
	}
}
