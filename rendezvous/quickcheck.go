package rendezvous

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// WithNATCheck makes Register and Connect measure the mapping of their
// local port beside the request and send it to the server (NAT-CLASS in a
// ClassUpdate, announced by NAT-CLASS-FOLLOWS in the request): a Binding
// on the control connection, sent with the request (which returns the
// server's alternate address, if it has one), and a Binding from the same
// port to the alternate address. The alternate address is remembered per
// server for the life of the process, so from the second request on that
// Binding runs from the start, beside the control connection's handshake.
// Register and Connect return once both the answer and the class are in;
// the check is bounded by 3 s (longer is "not measured"). The peer's
// [PeerInfo] carries the class. Package punch turns it on; it is off by
// default.
func WithNATCheck(on bool) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.natCheck = on })
}

const (
	// quickCheckTimeout bounds the Binding to the alternate address.
	quickCheckTimeout = 2 * time.Second
	// quickCheckBudget bounds the whole check; the server waits a little
	// longer for the class (classWait).
	quickCheckBudget = 3 * time.Second
)

// altCache remembers each server's alternate address (OTHER-ADDRESS of
// its last Binding; invalid: it has none), so the next check can start its
// probe at once. Bounded: one entry per server address this process used.
var altCache sync.Map // server string → netip.AddrPort

// checkedRequest sends req on c with the quick check running beside it,
// sends the class in a ClassUpdate as soon as it is known, and returns
// the answer and the class once both are in.
func (c *controlConn) checkedRequest(ctx context.Context, server string, bind netip.Addr, req *message) (*message, NATClass, error) {
	req.ClassFollows = true
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	classCh := make(chan NATClass, 1)
	go func() {
		cl := c.quickCheck(cctx, server, bind)
		// Always sent once, "not measured" too: the server waits for it.
		_ = c.send(&message{Type: stun.NewType(methodClassUpdate, stun.ClassIndication), TxID: newTxID(), Class: cl, HasClass: cl.Measured()})
		classCh <- cl
	}()
	resp, err := c.request(ctx, req)
	if err != nil {
		cancel() // no use for the class: end the check now
	}
	cl := <-classCh // bounded by quickCheckBudget
	return resp, cl, err
}

// altProbe is the Binding from our port to the alternate address.
type altProbe struct {
	other netip.AddrPort
	done  chan struct{}
	res   BindingResult
	err   error
}

func (c *controlConn) startAltProbe(ctx context.Context, other netip.AddrPort, port uint16, bind netip.Addr) *altProbe {
	p := &altProbe{other: other, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		actx, cancel := context.WithTimeout(ctx, min(quickCheckTimeout, c.cfg.requestTimeout))
		defer cancel()
		p.res, p.err = BindingFrom(actx, other.String(), netip.AddrPortFrom(bind, port),
			WithLogger(c.cfg.log), WithRequestTimeout(c.cfg.requestTimeout))
	}()
	return p
}

// quickCheck measures the mapping of c's local port; bind is the address
// c was bound to (invalid: any). It never fails: what it cannot tell is
// "not measured".
func (c *controlConn) quickCheck(ctx context.Context, server string, bind netip.Addr) NATClass {
	ctx, cancel := context.WithTimeout(ctx, quickCheckBudget)
	defer cancel()
	local := addrPortOf(c.nc.LocalAddr())
	if !bind.IsValid() {
		bind = unspecifiedLike(local.Addr())
	}
	var probe *altProbe
	if v, ok := altCache.Load(server); ok && v.(netip.AddrPort).IsValid() {
		probe = c.startAltProbe(ctx, v.(netip.AddrPort), local.Port(), bind)
	}
	b, err := c.bindingVia(ctx, c.sideRoundTrip)
	if err != nil {
		c.log.Debug("NAT check: binding failed", "err", err)
		return NATClass{}
	}
	altCache.Store(server, b.Other)
	if b.Mapped == local {
		return NATClass{Mapping: MappingNone}
	}
	if !b.Other.IsValid() {
		return NATClass{}
	}
	if probe == nil || probe.other != b.Other {
		probe = c.startAltProbe(ctx, b.Other, local.Port(), bind)
	}
	<-probe.done
	if probe.err != nil {
		c.log.Debug("NAT check: binding to the alternate address failed", "other", b.Other, "err", probe.err)
		return NATClass{}
	}
	m := MappingEndpointIndependent
	if probe.res.Mapped != b.Mapped {
		m = MappingEndpointDependent
	}
	c.log.Debug("NAT check", "server", server, "mapped", b.Mapped, "mapped_alt", probe.res.Mapped, "mapping", m)
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
