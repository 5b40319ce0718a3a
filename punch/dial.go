package punch

import (
	"context"
	"fmt"
	"net/netip"

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
	cfg := newConfig(opts)
	ep, err := NewEndpoint(ctx, cfg.localAddr, opts...)
	if err != nil {
		return nil, err
	}
	defer ep.Close()

	pi, ctl, err := rendezvous.Connect(ctx, rendezvousAddr, ep.Addr(), name, hostCandidates(ep.Addr(), rendezvousAddr),
		rendezvous.WithLogger(cfg.logger))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	// The control connection holds the NAT mapping the server observed
	// until the punch is over.
	defer ctl.Close()
	ep.emit(Event{Kind: EventPeerInfo, Addr: pi.Candidates[0], Detail: describePeer(pi),
		Candidates: pi.Candidates, Observed: pi.Observed})
	return ep.Punch(ctx, Session{Candidates: pi.Candidates, Role: RoleControlling, Tag: pi.Tag, Self: []netip.AddrPort{pi.Observed},
		Relay: relayOf(rendezvousAddr, pi)})
}

func describePeer(pi rendezvous.PeerInfo) string {
	return fmt.Sprintf("%q at %v (candidates %v); we are %v", pi.Name, pi.Candidates[0], pi.Candidates, pi.Observed)
}
