package punch

import (
	"errors"
	"net"
	"net/netip"
	"slices"
)

// endpoints returns the local and remote addresses of c, unmapped. A
// connection may lose its addresses (the peer reset it before we looked): that
// is an error here, never a nil dereference.
func endpoints(c net.Conn) (local, remote netip.AddrPort, err error) {
	la, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok || la == nil {
		return local, remote, errNoLocalAddr
	}
	ra, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok || ra == nil {
		return local, remote, errNoRemoteAddr
	}
	return unmap(la.AddrPort()), unmap(ra.AddrPort()), nil
}

// isSelf reports whether dialing a would reach our own port. With a fixed
// local port Go's DialTCP no longer guards against self-connects, and Linux
// lets a socket in SYN_SENT take its own SYN. When we listen on the
// unspecified address, every loopback address and every address of our
// interfaces with our port is us.
func (e *Endpoint) isSelf(a netip.AddrPort) bool {
	if a.Port() != e.addr.Port() {
		return false
	}
	ip := a.Addr().WithZone("").Unmap()
	own := e.addr.Addr().WithZone("").Unmap()
	if ip == own {
		return true
	}
	if !own.IsUnspecified() {
		return false
	}
	return ip.IsLoopback() || ip.IsUnspecified() || slices.Contains(e.ownAddrs, ip)
}

// usable says why a cannot be dialed from our local address, or nil.
func (e *Endpoint) usable(a netip.AddrPort) error {
	ip := a.Addr()
	switch {
	case !a.IsValid() || a.Port() == 0:
		return errors.New("not a valid address and port")
	case ip.IsUnspecified() || ip.IsMulticast():
		return errors.New("not a unicast address")
	}
	own := e.addr.Addr()
	if !own.IsUnspecified() && own.Is4() != ip.Is4() {
		return errors.New("address family differs from the local address " + e.addr.String())
	}
	return nil
}

// localFor is the address a dial to a binds: our port, and for a
// dual-stack endpoint the unspecified address of a's family, so that IPv4 and
// IPv6 candidates are both dialed from the port the listener holds.
func (e *Endpoint) localFor(a netip.AddrPort) netip.AddrPort {
	if !e.addr.Addr().IsUnspecified() {
		return e.addr
	}
	if a.Addr().Is4() {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), e.addr.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), e.addr.Port())
}

// interfaceAddrs lists our own unicast addresses, for isSelf.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
