package punch

import (
	"net"
	"net/netip"
)

// hostCandidates lists the addresses a peer on the same network could reach
// us at: every unicast address of an up interface, with the endpoint's
// port. Loopback and link-local addresses are left out: the first names a
// different machine for every peer but one, the second needs a zone. The
// rendezvous adds the endpoint it observed, which covers peers on this host;
// when the rendezvous itself is on loopback every peer is on this host, so
// there are no host candidates to add.
func (e *Endpoint) hostCandidates(rendezvousAddr string) []netip.AddrPort {
	if onLoopback(rendezvousAddr) {
		return nil
	}
	if a := e.addr.Addr(); a.IsValid() && !a.IsUnspecified() {
		return []netip.AddrPort{e.addr}
	}
	return hostAddrs(e.addr, e.dualStack, upInterfaceAddrs())
}

// hostAddrs makes host candidates of our interface addresses for an
// endpoint on an unspecified local address. IPv6 addresses are advertised
// when the endpoint can be reached over IPv6: bound to ::, or to 0.0.0.0 on
// a dual-stack socket (Go listens on both families for 0.0.0.0 where the
// system has IPv6, and NewEndpoint records whether it did).
func hostAddrs(local netip.AddrPort, dualStack bool, addrs []netip.Addr) []netip.AddrPort {
	v6 := local.Addr().Is6() || dualStack
	var out []netip.AddrPort
	for _, ip := range addrs {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		if ip.Is6() && !v6 {
			continue // an IPv4-only endpoint cannot be reached over IPv6
		}
		out = append(out, netip.AddrPortFrom(ip, local.Port()))
	}
	return out
}

// upInterfaceAddrs lists the addresses of the interfaces that are up and
// are not loopback.
func upInterfaceAddrs() []netip.Addr {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					out = append(out, ip)
				}
			}
		}
	}
	return out
}

// onLoopback reports whether a HOST:PORT names this machine's loopback.
func onLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
