package punch

import (
	"errors"
	"net/netip"
)

// candPolicy is the engine's own candidate policy, applied on top of the
// rendezvous server's (defence in depth: a hostile or buggy server must
// not make us dial our loopback, our LAN or a metadata address either).
// The first candidate is the one the server observed; the rest are the
// peer's host candidates.
type candPolicy struct {
	allowLoopback bool // the rendezvous is on loopback: every peer is on this host
	sameNAT       bool // the peer was seen behind our public address
}

var errPolicy = errors.New("withheld by the candidate policy")

// policyFor is the policy of a session the rendezvous at rendezvousAddr
// introduced, with our observed endpoint and the peer's candidates.
func policyFor(rendezvousAddr string, observed netip.AddrPort, cands []netip.AddrPort) *candPolicy {
	p := &candPolicy{allowLoopback: onLoopback(rendezvousAddr)}
	if len(cands) > 0 {
		p.sameNAT = unmap(cands[0]).Addr() == unmap(observed).Addr()
	}
	return p
}

// check says why a, the i-th candidate, must not be dialed, or nil.
// Link-local, multicast and unspecified addresses and port 0 are never
// dialed, whatever the policy.
func (p *candPolicy) check(a netip.AddrPort, i int) error {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid() || a.Port() == 0 || ip.IsUnspecified() || ip.IsMulticast():
		return errPolicy
	case ip.IsLinkLocalUnicast():
		return errPolicy
	case p == nil:
		return nil
	case ip.IsLoopback():
		if p.allowLoopback {
			return nil
		}
		return errPolicy
	case i == 0:
		// The observed endpoint is what the server saw; it may be a
		// private address when the server is on a private network.
		return nil
	case ip.IsPrivate() || !ip.IsGlobalUnicast():
		if p.sameNAT {
			return nil
		}
		return errPolicy
	}
	return nil
}
