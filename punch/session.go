package punch

import (
	"fmt"
	"net/netip"
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

// Method is how the kernel made the punched connection, from our side.
type Method uint8

const (
	MethodSimultaneousOpen Method = iota + 1 // both peers dialed; the SYNs crossed
	MethodAccept                             // we accepted the peer's SYN
	MethodConnect                            // we dialed and the peer accepted
	MethodRelay                              // both peers connected to the rendezvous server's relay
)

func (m Method) String() string {
	switch m {
	case MethodSimultaneousOpen:
		return "simultaneous-open"
	case MethodAccept:
		return "accept"
	case MethodConnect:
		return "connect"
	case MethodRelay:
		return "relay"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// methodOf derives the Method from who dialed on each side.
func methodOf(weDialed, peerDialed bool) Method {
	switch {
	case weDialed && peerDialed:
		return MethodSimultaneousOpen
	case weDialed:
		return MethodConnect
	default:
		return MethodAccept
	}
}

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
}

// unmap normalises IPv4-mapped IPv6 addresses, which a dual-stack socket
// reports for IPv4 peers, so that equal endpoints compare equal.
func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
