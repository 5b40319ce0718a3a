package punch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// Dial asks the rendezvous server at rendezvousAddr for the peer registered
// as name and punches a direct connection to it. ctx bounds the whole
// operation, rendezvous included; give it a deadline. A server that cannot
// be reached, or that restarts mid-request, is retried with backoff until
// ctx ends.
//
// Errors from the rendezvous phase match [ErrRendezvous] (and
// rendezvous.ErrUnknownName when nobody holds name); punch failures are
// *[Error].
func Dial(ctx context.Context, rendezvousAddr, name string, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ep, err := NewEndpoint(ctx, cfg.localAddr, opts...)
	if err != nil {
		return nil, err
	}
	defer ep.Close()

	// The listener may refuse us (busy) after the server answered: the
	// punch then ends at once with the listener's reason. The engine's own
	// hook goes last, so no caller's option displaces it.
	ctx, cancelPunch := context.WithCancelCause(ctx)
	defer cancelPunch(nil)
	pi, ctl, err := rendezvous.Connect(ctx, rendezvousAddr, ep.Addr(), name, ep.hostCandidates(rendezvousAddr),
		append(cfg.rendezvousOptions(), rendezvous.WithPeerRefused(func(err error) { cancelPunch(err) }))...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	// The control connection holds the NAT mapping the server observed
	// until the punch is over.
	defer ctl.Close()
	ep.emit(Event{Kind: EventPeerInfo, Addr: pi.Candidates[0], Detail: describePeer(pi),
		Candidates: pi.Candidates, Observed: pi.Observed, LocalClass: pi.LocalClass, PeerClass: pi.Class})
	// The reports go out before the deferred Close: on the control
	// connection ahead of its reset, in order.
	reporter, _ := ctl.(rendezvous.Reporter)
	relay, err := sessionRelay(&cfg, rendezvousAddr, pi)
	if err != nil {
		report(ctx, &cfg, reporter, pi, nil, err, 0)
		return nil, err
	}
	start := time.Now()
	c, err := ep.Punch(ctx, Session{Candidates: pi.Candidates, Role: RoleControlling, Tag: pi.Tag, Self: []netip.AddrPort{pi.Observed},
		Relay: relay, policy: policyFor(rendezvousAddr, pi.Observed, pi.Candidates)})
	report(ctx, &cfg, reporter, pi, c, err, time.Since(start))
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, rendezvous.ErrPeerRefused) {
		return nil, fmt.Errorf("%w: %w", ErrRendezvous, cause)
	}
	return c, err
}

func describePeer(pi rendezvous.PeerInfo) string {
	return fmt.Sprintf("%q at %v (candidates %v); we are %v", pi.Name, pi.Candidates[0], pi.Candidates, pi.Observed)
}
