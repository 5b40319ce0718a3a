package rendezvous

import (
	"net"
	"net/netip"
)

// The candidate policy decides which of a peer's host candidates the other
// peer is told to dial. A dialer chooses its candidates freely, and the
// listener dials them from its own host: without a policy one Connect
// makes the listener probe its loopback, its LAN or a cloud metadata
// address (blind SSRF) and reflect SYNs anywhere. So:
//
//   - the observed endpoint (the TCP source the server saw, which the
//     client cannot choose) is always handed out;
//   - loopback host candidates only when loopback is allowed (by default:
//     the server itself listens on loopback, so every peer is on its host);
//   - link-local, multicast, unspecified and port 0 never;
//   - private/LAN and other non-global host candidates only to a peer seen
//     behind the same public address: the same-NAT case they exist for;
//   - global host candidates (a peer with a public address of its own).
//
// The engine applies the same rules again on its side (punch/candpolicy.go).

// handOut returns what peer to may be told of from's host candidates.
func (s *Server) handOut(from, to *peerConn, host []netip.AddrPort) []netip.AddrPort {
	sameNAT := from.remote.Addr() == to.remote.Addr()
	out := host[:0:0]
	for _, a := range host {
		if s.candidateAllowed(a, from, sameNAT) {
			out = append(out, a)
		} else {
			s.stats.candidatesDropped.add()
		}
	}
	return out
}

func (s *Server) candidateAllowed(a netip.AddrPort, from *peerConn, sameNAT bool) bool {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid() || a.Port() == 0 || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		return false
	case ip.IsLoopback():
		return s.loopbackAllowed(from) && sameNAT
	case ip.IsPrivate() || !ip.IsGlobalUnicast():
		return sameNAT
	}
	return true
}

// loopbackAllowed: loopback candidates make sense only when every peer is
// on the server's host, which is when the server listens on loopback.
func (s *Server) loopbackAllowed(c *peerConn) bool {
	switch s.cfg.loopback {
	case 1:
		return true
	case -1:
		return false
	}
	if ta, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().IsLoopback()
	}
	return false
}
