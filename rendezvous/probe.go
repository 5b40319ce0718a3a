package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// Probe is a connection to a tcpunch server from a reused local port, for
// NAT behaviour tests (package netcheck): Binding requests that also
// return the server's alternate address, and the dial-back. Create it with
// [DialProbe]; Close it.
type Probe struct {
	c     *controlConn
	local netip.AddrPort
}

// BindingResult is a Binding response.
type BindingResult struct {
	Mapped netip.AddrPort // XOR-MAPPED-ADDRESS: our endpoint as the server saw it
	Other  netip.AddrPort // OTHER-ADDRESS: the server's alternate address; invalid when it has none
	Origin netip.AddrPort // RESPONSE-ORIGIN: the server address that answered; invalid without an alternate address
	RTT    time.Duration  // request to response, on the established connection
}

// DialProbe connects to server from local (a reused port: see package
// sockopt; port 0 lets the kernel choose). Of the client options it uses
// the logger, the request timeout (for connecting) and the keepalive.
func DialProbe(ctx context.Context, server string, local netip.AddrPort, opts ...ClientOption) (*Probe, error) {
	cfg := newClientConfig(opts)
	if cfg.err != nil {
		return nil, fmt.Errorf("rendezvous: probe %s: %w", server, cfg.err)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
	defer cancel()
	c, err := dialControl(dctx, server, local, cfg)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: probe: %w", err)
	}
	return &Probe{c: c, local: addrPortOf(c.nc.LocalAddr())}, nil
}

// LocalAddr is the probe's local endpoint (its real port when local had
// port 0).
func (p *Probe) LocalAddr() netip.AddrPort { return p.local }

// Binding sends a Binding request and returns the response.
func (p *Probe) Binding(ctx context.Context) (BindingResult, error) {
	return p.c.binding(ctx)
}

func (c *controlConn) binding(ctx context.Context) (BindingResult, error) {
	return c.bindingVia(ctx, c.roundTrip)
}

// bindingVia is binding with the round trip of choice (sideRoundTrip
// beside a request in flight).
func (c *controlConn) bindingVia(ctx context.Context, rt func(context.Context, *message) (*message, error)) (BindingResult, error) {
	start := time.Now()
	resp, err := rt(ctx, &message{Type: stun.BindingRequest, TxID: newTxID()})
	if err != nil {
		return BindingResult{}, fmt.Errorf("rendezvous: binding: %w", err)
	}
	if !resp.Mapped.IsValid() {
		return BindingResult{}, fmt.Errorf("rendezvous: binding: %w: no (XOR-)MAPPED-ADDRESS", errMalformed)
	}
	r := BindingResult{Mapped: unmapAP(resp.Mapped), Origin: unmapAP(resp.Origin), RTT: time.Since(start)}
	if resp.Other.IsValid() && resp.Origin.IsValid() {
		// RFC 5780 §7.4: OTHER-ADDRESS means something only from a server
		// that says where it answered from; a lone one is a server that
		// does not know (the public-STUN misconfiguration).
		r.Other = unmapAP(resp.Other)
	}
	return r, nil
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// ErrNoAltAddress: the server has no alternate address (of this address
// family), so it cannot dial back.
var ErrNoAltAddress = errors.New("rendezvous: the server has no alternate address")

// DialBack asks the server to connect from its alternate address to the
// endpoint it observes for this probe, carrying nonce, and returns what it
// reports. Listen on the probe's local port beforehand and read the
// connection with [ReadDialBack]. A server without an alternate address
// gives an error matching ErrNoAltAddress; over its rate limit, a
// *ServerError with code 429.
func (p *Probe) DialBack(ctx context.Context, nonce [DialBackNonceSize]byte) (DialBackResult, error) {
	resp, err := p.c.roundTrip(ctx, &message{Type: stun.NewType(methodDialBack, stun.ClassRequest), TxID: newTxID(), DialNonce: nonce, HasDialNonce: true})
	var se *ServerError
	if errors.As(err, &se) && se.Code == CodeNoAltAddress {
		return 0, fmt.Errorf("%w: %w", ErrNoAltAddress, err)
	}
	if err != nil {
		return 0, fmt.Errorf("rendezvous: dial-back: %w", err)
	}
	if resp.DialResult == 0 || !resp.HasDialNonce || resp.DialNonce != nonce {
		return 0, fmt.Errorf("rendezvous: dial-back: %w: response without DIALBACK-RESULT or with another nonce", errMalformed)
	}
	return resp.DialResult, nil
}

// Close closes the probe's connection (with a RST, as every client
// connection of this package: no TIME_WAIT on the reused port).
func (p *Probe) Close() error { return p.c.Close() }

// ReadDialBack reads the DialBack indication a server writes on a dial-back
// connection (or a netcheck writes on its hairpin test) and returns its
// nonce. It reads one STUN message at most, within timeout.
func ReadDialBack(c net.Conn, timeout time.Duration) ([DialBackNonceSize]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	raw, err := readFrame(c, nil, 512, nil)
	if err != nil {
		return [DialBackNonceSize]byte{}, fmt.Errorf("rendezvous: reading a dial-back: %w", err)
	}
	msg, _, err := decodeMessage(raw)
	if err != nil {
		return [DialBackNonceSize]byte{}, fmt.Errorf("rendezvous: reading a dial-back: %w", err)
	}
	if msg.Type != stun.NewType(methodDialBack, stun.ClassIndication) || !msg.HasDialNonce {
		return [DialBackNonceSize]byte{}, fmt.Errorf("rendezvous: reading a dial-back: %w: %v without a nonce", errMalformed, msg.Type)
	}
	return msg.DialNonce, nil
}

// WriteDialBack writes a DialBack indication carrying nonce: what the
// server writes on a dial-back, and what a netcheck writes on its hairpin
// connection to recognise it at its own listener.
func WriteDialBack(w io.Writer, nonce [DialBackNonceSize]byte) error {
	var m stun.Message
	msg := &message{Type: stun.NewType(methodDialBack, stun.ClassIndication), TxID: newTxID(), DialNonce: nonce, HasDialNonce: true}
	if err := msg.encode(&m); err != nil {
		return err
	}
	_, err := w.Write(m.Raw)
	return err
}

// BindingFrom sends one Binding request from local to server on a new
// connection and closes it: one probe of a mapping test.
func BindingFrom(ctx context.Context, server string, local netip.AddrPort, opts ...ClientOption) (BindingResult, error) {
	p, err := DialProbe(ctx, server, local, opts...)
	if err != nil {
		return BindingResult{}, err
	}
	defer p.Close()
	return p.Binding(ctx)
}
