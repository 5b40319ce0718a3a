package netcheck

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
	"github.com/tcpunch/tcpunch/sockopt"
)

const noAlt = "the server has no second address for this family; its operator can add one with serve --alt-addr"

// checkFamily runs every test of one family from one reused port: a
// listener on it, a probe connection from it to the server's primary
// address (Binding, then the dial-back, before anything is sent to the
// alternate address, so an address-dependent filter has not been opened
// for it), then the Bindings to the alternate address, then the hairpin.
func checkFamily(ctx context.Context, cfg config, network string, server netip.AddrPort) Family {
	f := Family{Network: network, Server: server, Mapping: MappingResult{Observations: []Observation{}}}
	tcp := "tcp4"
	unspec := netip.IPv4Unspecified()
	if network == "ipv6" {
		tcp, unspec = "tcp6", netip.IPv6Unspecified()
	}
	ln, err := sockopt.ListenConfig().Listen(ctx, tcp, netip.AddrPortFrom(unspec, 0).String())
	if err != nil {
		return notTested(network, fmt.Sprintf("no %s listener on a local port: %v", network, rootCause(err)))
	}
	defer ln.Close()
	bind := netip.AddrPortFrom(unspec, uint16(ln.Addr().(*net.TCPAddr).Port))
	arrivals := acceptNonces(ln)

	ropts := []rendezvous.ClientOption{rendezvous.WithLogger(cfg.log), rendezvous.WithRequestTimeout(cfg.timeout)}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, cfg.timeout) }
	sctx, cancel := step()
	p, err := rendezvous.DialProbe(sctx, server.String(), bind, ropts...)
	cancel()
	if err != nil {
		return notTested(network, fmt.Sprintf("cannot reach the server over %s: %v", network, rootCause(err)))
	}
	defer p.Close()
	sctx, cancel = step()
	b1, err := p.Binding(sctx)
	cancel()
	if err != nil {
		return notTested(network, fmt.Sprintf("the server did not answer a Binding: %v", rootCause(err)))
	}
	f.Tested = true
	f.Local = netip.AddrPortFrom(p.LocalAddr().Addr(), bind.Port())
	f.Observed, f.RTT = b1.Mapped, b1.RTT
	f.Mapping.Observations = append(f.Mapping.Observations, Observation{To: server, Mapped: b1.Mapped})
	noNAT := b1.Mapped == f.Local

	// Behind a NAT, and port preservation.
	switch {
	case noNAT:
		f.BehindNAT = Bool{No, "the server saw our own address and port"}
		f.PortPreserved = Bool{Yes, "no NAT"}
	case b1.Mapped.Port() == bind.Port():
		f.BehindNAT = Bool{Yes, fmt.Sprintf("the server saw %v for local %v", b1.Mapped, f.Local)}
		f.PortPreserved = Bool{Yes, fmt.Sprintf("local port %d kept", bind.Port())}
	default:
		f.BehindNAT = Bool{Yes, fmt.Sprintf("the server saw %v for local %v", b1.Mapped, f.Local)}
		f.PortPreserved = Bool{No, fmt.Sprintf("local port %d became %d", bind.Port(), b1.Mapped.Port())}
	}

	// Filtering: the dial-back, first.
	f.Filtering = filtering(ctx, cfg, p, b1, arrivals)

	// Mapping: the alternate IP at the primary port, then at its own.
	f.Mapping = mapping(ctx, cfg, bind, b1, noNAT, f.Mapping.Observations, ropts)

	// Hairpin.
	f.Hairpin = hairpin(ctx, cfg, tcp, p.LocalAddr().Addr(), b1.Mapped, noNAT, arrivals)
	return f
}

func filtering(ctx context.Context, cfg config, p *rendezvous.Probe, b1 rendezvous.BindingResult, arrivals *nonces) FilteringResult {
	if !b1.Other.IsValid() {
		return FilteringResult{Why: noAlt}
	}
	var nonce [rendezvous.DialBackNonceSize]byte
	rand.Read(nonce[:])
	wait := arrivals.expect(nonce)
	// The server's own dial timeout bounds the answer; ours only guards
	// against a server that never answers.
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout+10*time.Second)
	res, err := p.DialBack(dctx, nonce)
	cancel()
	if err != nil {
		return FilteringResult{Why: fmt.Sprintf("dial-back failed: %v", rootCause(err))}
	}
	from := b1.Other.Addr()
	switch res {
	case rendezvous.DialBackRefused:
		return FilteringResult{Class: rendezvous.FilteringRST, Why: fmt.Sprintf("a SYN from %v (never contacted) was answered with RST", from)}
	case rendezvous.DialBackTimeout:
		return FilteringResult{Class: rendezvous.FilteringSilent, Why: fmt.Sprintf("a SYN from %v (never contacted) got no answer", from)}
	case rendezvous.DialBackUnreachable:
		return FilteringResult{Why: fmt.Sprintf("the server's dial-back from %v got an ICMP unreachable", from)}
	}
	select {
	case <-wait:
		return FilteringResult{Class: rendezvous.FilteringAccepted, Why: fmt.Sprintf("a SYN from %v (never contacted) reached our listener", from)}
	case <-time.After(cfg.timeout):
		return FilteringResult{Why: fmt.Sprintf("the server connected from %v, but not to our listener (a port forward to another host?)", from)}
	case <-ctx.Done():
		return FilteringResult{Why: ctx.Err().Error()}
	}
}

func mapping(ctx context.Context, cfg config, bind netip.AddrPort, b1 rendezvous.BindingResult, noNAT bool, obs []Observation, ropts []rendezvous.ClientOption) MappingResult {
	m := MappingResult{Observations: obs}
	if noNAT {
		m.Class, m.Why = rendezvous.MappingNone, "no NAT: the server saw our own endpoint"
		return m
	}
	if !b1.Other.IsValid() {
		m.Why = noAlt
		return m
	}
	targets := []netip.AddrPort{netip.AddrPortFrom(b1.Other.Addr(), b1.Origin.Port())}
	if b1.Other.Port() != b1.Origin.Port() {
		targets = append(targets, b1.Other)
	}
	for _, to := range targets {
		sctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		b, err := rendezvous.BindingFrom(sctx, to.String(), bind, ropts...)
		cancel()
		if err != nil {
			m.Why = fmt.Sprintf("binding to the alternate address %v failed: %v", to, rootCause(err))
			return m
		}
		m.Observations = append(m.Observations, Observation{To: to, Mapped: b.Mapped, PortDelta: int(b.Mapped.Port()) - int(b1.Mapped.Port())})
	}
	x1, x2 := m.Observations[0].Mapped, m.Observations[1].Mapped
	switch {
	case x1 == x2 && (len(m.Observations) < 3 || m.Observations[2].Mapped == x1):
		m.Class, m.Why = rendezvous.MappingEndpointIndependent, fmt.Sprintf("one mapping %v for %d destinations", x1, len(m.Observations))
	case x1 == x2:
		m.Class, m.Why = rendezvous.MappingAddressPortDependent, "another port of the alternate address got another mapping"
	case len(m.Observations) < 3:
		m.Class, m.Why = rendezvous.MappingEndpointDependent, "the alternate address got another mapping (the server's two ports are one: address and port dependence not told apart)"
	case m.Observations[2].Mapped == x2:
		m.Class, m.Why = rendezvous.MappingAddressDependent, "the alternate address got another mapping, the same for both of its ports"
	default:
		m.Class, m.Why = rendezvous.MappingAddressPortDependent, "every destination got its own mapping"
	}
	return m
}

func hairpin(ctx context.Context, cfg config, tcp string, src netip.Addr, observed netip.AddrPort, noNAT bool, arrivals *nonces) Bool {
	if noNAT {
		return Bool{Why: "no NAT: nothing to hairpin through"}
	}
	var nonce [rendezvous.DialBackNonceSize]byte
	rand.Read(nonce[:])
	wait := arrivals.expect(nonce)
	d := net.Dialer{Timeout: cfg.timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	c, err := d.DialContext(ctx, tcp, observed.String())
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Bool{No, fmt.Sprintf("a connection to our own public endpoint %v was refused (RST)", observed)}
	case err != nil && isTimeout(err):
		return Bool{No, fmt.Sprintf("a connection to our own public endpoint %v got no answer", observed)}
	case err != nil:
		return Bool{Why: fmt.Sprintf("connecting to our own public endpoint %v: %v", observed, rootCause(err))}
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(cfg.timeout))
	if err := rendezvous.WriteDialBack(c, nonce); err != nil {
		return Bool{Why: fmt.Sprintf("writing on the hairpin connection: %v", rootCause(err))}
	}
	select {
	case <-wait:
		return Bool{Yes, fmt.Sprintf("a connection to our own public endpoint %v came back to our listener", observed)}
	case <-time.After(cfg.timeout):
		return Bool{No, fmt.Sprintf("a connection to our own public endpoint %v was answered, but not by our listener", observed)}
	case <-ctx.Done():
		return Bool{Why: ctx.Err().Error()}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rootCause is the innermost part of an error, for a short why.
func rootCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if isTimeout(err) {
		return "timed out"
	}
	var se *rendezvous.ServerError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (code %d)", se.Reason, se.Code)
	}
	return err.Error()
}
