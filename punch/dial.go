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
// One of [WithSecret], [WithCode] or [WithInsecure] is required
// ([ErrNoAuth]). A peer that fails authentication is an error matching
// [ErrAuthFailed]; with WithSecret a wrong secret usually shows earlier,
// as rendezvous.ErrUnknownName (the name derives from the secret).
//
// Errors from the rendezvous phase match [ErrRendezvous] (and
// rendezvous.ErrUnknownName when nobody holds name); punch failures are
// *[Error].
func Dial(ctx context.Context, rendezvousAddr, name string, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	serverName, proof, err := cfg.auth.serverName(name)
	if err != nil {
		return nil, err
	}
	ep, err := NewEndpoint(ctx, cfg.localAddr, opts...)
	if err != nil {
		return nil, err
	}
	// A relayed connection holds the Endpoint for its upgrade's
	// background punches (endpoint_hold.go): it closes when that ends.
	defer ep.closeWhenFree()

	// The listener may refuse us (busy) after the server answered: the
	// punch then ends at once with the listener's reason. The engine's own
	// hook goes last, so no caller's option displaces it.
	ctx, cancelPunch := context.WithCancelCause(ctx)
	defer cancelPunch(nil)
	pi, ctl, err := rendezvous.Connect(ctx, rendezvousAddr, ep.Addr(), serverName, ep.hostCandidates(rendezvousAddr),
		append(append(cfg.rendezvousOptions(), proof...), rendezvous.WithPeerRefused(func(err error) { cancelPunch(err) }))...)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, rendezvous.ErrPeerRefused) {
			err = cause // refused while the Connect was finishing
		}
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
	// The secure handshake starts now: its first flight goes out behind
	// the nominating hello (docs/PROTOCOL.md, the secure link).
	session := Session{Candidates: pi.Candidates, Role: RoleControlling, Tag: pi.Tag, Self: []netip.AddrPort{pi.Observed},
		Relay: relay, policy: policyFor(rendezvousAddr, pi.Observed, pi.Candidates)}
	el := cfg.startEarly(ctx, pi.Tag, name)
	if el != nil {
		session.early = el.ec.snapshot
	}
	start := time.Now()
	raw, err := ep.Punch(ctx, session)
	report(ctx, &cfg, reporter, pi, raw, err, time.Since(start))
	if err != nil {
		if el != nil {
			el.abort(err)
		}
		if cause := context.Cause(ctx); errors.Is(cause, rendezvous.ErrPeerRefused) {
			return nil, fmt.Errorf("%w: %w", ErrRendezvous, cause)
		}
		return nil, err
	}
	if el == nil {
		return cfg.secure(ctx, raw, RoleControlling, pi.Tag, name)
	}
	return cfg.finishEarly(ctx, raw, el)
}

func describePeer(pi rendezvous.PeerInfo) string {
	return fmt.Sprintf("%q at %v (candidates %v); we are %v", pi.Name, pi.Candidates[0], pi.Candidates, pi.Observed)
}
