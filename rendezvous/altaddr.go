package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// The alternate address (RFC 5780 §3): a server with a second IP address
// lets clients tell how their NAT maps and filters. The server listens on
// the alternate IP at the alternate port (OTHER-ADDRESS) and at the primary
// port, so a client can change the address alone, then address and port;
// it dials clients back from the alternate IP, from a port it does not
// listen on.

// WithAltAddr gives the server a second address, once per address family:
// it then also listens on alt and on alt's IP at the port of the first
// listener it serves, answers Binding requests with OTHER-ADDRESS (alt) and
// RESPONSE-ORIGIN, and serves DialBack requests from alt's IP. Port 0 lets
// the kernel choose alt's port. The IP must be a unicast address of this
// host, another than the one clients reach the server at; a server whose
// alternate address cannot be bound does not serve (Serve returns the
// error), because a server that advertises an address it does not hold
// makes clients misclassify their NAT.
func WithAltAddr(alt netip.AddrPort) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		alt = netip.AddrPortFrom(alt.Addr().Unmap(), alt.Port())
		ip := alt.Addr()
		call := fmt.Sprintf("WithAltAddr(%v)", alt)
		if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
			c.invalid(call, "needs a unicast IP address of this host")
			return
		}
		for _, a := range c.alts {
			if a.Addr().Is4() == ip.Is4() {
				c.invalid(call, "one alternate address per address family")
				return
			}
		}
		c.alts = append(c.alts, alt)
	})
}

// WithDialBack bounds the dial-backs (defaults: 2 s per dial, a burst of 8
// per source prefix ([WithSourcePrefix]; table bounded by
// [WithMaxRateEntries]) refilled at 1 per second, 32 in flight in all;
// over either, 429 [CodeTooManyRequests], counted in [Stats]). timeout must
// be positive, burst and inFlight at least 1.
func WithDialBack(timeout time.Duration, burst, inFlight int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if timeout <= 0 || burst < 1 || inFlight < 1 {
			c.invalid(fmt.Sprintf("WithDialBack(%v, %d, %d)", timeout, burst, inFlight), "the timeout must be positive, burst and in-flight at least 1")
			return
		}
		c.dialBackTimeout, c.dialBackBurst, c.dialBackInFlight = timeout, burst, inFlight
	})
}

// Dial-back defaults.
const (
	DefaultDialBackTimeout  = 2 * time.Second
	DefaultDialBackBurst    = 8
	DefaultDialBackInFlight = 32
	dialBackRefill          = time.Second
)

// altAddrs is the server's bound alternate addresses.
type altAddrs struct {
	other  []netip.AddrPort // OTHER-ADDRESS per family: the alternate IP and port, as bound
	ips    []netip.Addr
	listen []net.Listener
}

// startAlt binds the alternate addresses once, beside the first listener
// served (its port is the "primary port" the alternate IP listens on too).
// Each alternate listener is served like any other.
func (s *Server) startAlt(primary net.Listener) error {
	s.mu.Lock()
	if s.altStarted || len(s.cfg.alts) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.altStarted = true
	s.mu.Unlock()
	pap := addrPortOf(primary.Addr())
	pport := pap.Port()
	// A primary listener on the unspecified address already accepts at the
	// alternate IP on its port (binding that again is EADDRINUSE).
	wildcard := pap.Addr().IsUnspecified()
	lc := net.ListenConfig{KeepAliveConfig: s.keepAliveConfig()}
	var alt altAddrs
	fail := func(err error) error {
		for _, ln := range alt.listen {
			ln.Close()
		}
		return err
	}
	for _, a := range s.cfg.alts {
		if wildcard && a.Port() == pport {
			alt.other = append(alt.other, a)
			alt.ips = append(alt.ips, a.Addr())
			continue
		}
		ln, err := lc.Listen(context.Background(), "tcp", a.String())
		if err != nil {
			return fail(fmt.Errorf("rendezvous: binding the alternate address %v: %w", a, err))
		}
		alt.listen = append(alt.listen, ln)
		bound := addrPortOf(ln.Addr())
		alt.other = append(alt.other, bound)
		alt.ips = append(alt.ips, bound.Addr())
		if bound.Port() != pport && !wildcard {
			ln2, err := lc.Listen(context.Background(), "tcp", netip.AddrPortFrom(bound.Addr(), pport).String())
			if err != nil {
				return fail(fmt.Errorf("rendezvous: binding the alternate address %v at the primary port %d: %w", bound.Addr(), pport, err))
			}
			alt.listen = append(alt.listen, ln2)
		}
	}
	s.mu.Lock()
	s.alt = alt
	s.mu.Unlock()
	for _, ln := range alt.listen {
		s.log.Info("rendezvous serving the alternate address", "addr", ln.Addr().String())
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, ErrServerClosed) {
				s.log.Error("serving the alternate address stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return nil
}

// AltAddrs lists the alternate addresses being served (OTHER-ADDRESS per
// family), none before the first Serve or without [WithAltAddr].
func (s *Server) AltAddrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.AddrPort(nil), s.alt.other...)
}

// altFor returns the alternate address of a's family, if one is bound.
func (s *Server) altFor(a netip.Addr) (netip.AddrPort, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.alt.other {
		if o.Addr().Is4() == a.Unmap().Is4() {
			return o, true
		}
	}
	return netip.AddrPort{}, false
}

// bindingAddrs is what a Binding response on c carries besides the mapped
// address: RESPONSE-ORIGIN, and OTHER-ADDRESS on a connection to the
// primary address; neither when no alternate address of the connection's
// family is bound.
func (c *peerConn) bindingAddrs() (other, origin netip.AddrPort) {
	origin = addrPortOf(c.nc.LocalAddr())
	alt, ok := c.s.altFor(origin.Addr())
	if !ok {
		return netip.AddrPort{}, netip.AddrPort{}
	}
	if origin.Addr() == alt.Addr() {
		return netip.AddrPort{}, origin // a connection to the alternate IP itself
	}
	return alt, origin
}
