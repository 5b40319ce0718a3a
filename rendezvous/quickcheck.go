package rendezvous

import (
	"context"
	"net/netip"
	"time"
)

// WithNATCheck makes Register and Connect measure the mapping of their
// local port before they send the request, and send it inside (NAT-CLASS):
// a Binding on the control connection (which returns the server's
// alternate address, if it has one), then a Binding from the same port to
// the alternate address. Cost: one round trip, plus a connection and a
// round trip to the alternate address when there is one (bounded by 2 s;
// longer is "not measured"). The peer's [PeerInfo] then carries the class.
// Package punch turns it on; it is off by default.
func WithNATCheck(on bool) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.natCheck = on })
}

// quickCheckTimeout bounds the Binding to the alternate address.
const quickCheckTimeout = 2 * time.Second

// quickCheck measures the mapping of c's local port; bind is the address
// c was bound to (invalid: any). It never fails: what it cannot tell is
// "not measured".
func (c *controlConn) quickCheck(ctx context.Context, server string, bind netip.Addr) NATClass {
	local := addrPortOf(c.nc.LocalAddr())
	b, err := c.binding(ctx)
	if err != nil {
		c.log.Debug("NAT check: binding failed", "err", err)
		return NATClass{}
	}
	if b.Mapped == local {
		return NATClass{Mapping: MappingNone}
	}
	if !b.Other.IsValid() {
		return NATClass{}
	}
	actx, cancel := context.WithTimeout(ctx, min(quickCheckTimeout, c.cfg.requestTimeout))
	defer cancel()
	if !bind.IsValid() {
		bind = unspecifiedLike(local.Addr())
	}
	b2, err := BindingFrom(actx, b.Other.String(), netip.AddrPortFrom(bind, local.Port()),
		WithLogger(c.cfg.log), WithRequestTimeout(c.cfg.requestTimeout))
	if err != nil {
		c.log.Debug("NAT check: binding to the alternate address failed", "other", b.Other, "err", err)
		return NATClass{}
	}
	m := MappingEndpointIndependent
	if b2.Mapped != b.Mapped {
		m = MappingEndpointDependent
	}
	c.log.Debug("NAT check", "server", server, "mapped", b.Mapped, "mapped_alt", b2.Mapped, "mapping", m)
	return NATClass{Mapping: m}
}

// unspecifiedLike is the unspecified address of a's family: the reused
// port is bound to it, so the second connection must be too.
func unspecifiedLike(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}
