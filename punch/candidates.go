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
func hostCandidates(local netip.AddrPort, rendezvousAddr string) []netip.AddrPort {
	if onLoopback(rendezvousAddr) {
		return nil
	}
	if a := local.Addr(); a.IsValid() && !a.IsUnspecified() {
		return []netip.AddrPort{local}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			if ip.Is6() && local.Addr().Is4() {
				continue // an IPv4-only endpoint cannot be reached over IPv6
			}
			out = append(out, netip.AddrPortFrom(ip, local.Port()))
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
