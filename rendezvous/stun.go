package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/sockopt"
)

// MappedAddress returns local's mapped address as the STUN-over-TCP server
// at address server sees it: a Binding request from local (a reused port)
// answered with XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an RFC 3489-era
// server. It works with any STUN server listening on TCP (tcpunch's own,
// coturn, ...). Two servers reporting different ports for one local port
// mean a symmetric NAT, which TCP hole punching cannot cross. Of the
// client options it uses the request timeout; an invalid option gives an
// error matching ErrInvalidOption.
func MappedAddress(ctx context.Context, server string, local netip.AddrPort, opts ...ClientOption) (netip.AddrPort, error) {
	cfg := newClientConfig(opts)
	fail := func(err error) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("rendezvous: STUN binding with %s from %v: %w", server, local, err)
	}
	if cfg.err != nil {
		return fail(cfg.err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
	defer cancel()
	nc, err := sockopt.Dialer(local).DialContext(ctx, "tcp", server)
	if err != nil {
		return fail(err)
	}
	defer func() {
		// Reset, not FIN: no TIME_WAIT may keep this reused port from
		// reaching the same server again soon.
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		nc.Close()
	}()
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}

	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return fail(err)
	}
	if _, err := nc.Write(req.Raw); err != nil {
		return fail(err)
	}
	var buf []byte
	for {
		raw, err := readFrame(nc, buf, cfg.maxMessage, nil)
		if err != nil {
			if ctx.Err() != nil {
				err = errors.Join(ctx.Err(), err)
			}
			return fail(err)
		}
		buf = raw[:0]
		msg, unknown, err := decodeMessage(raw)
		if err != nil {
			return fail(err)
		}
		if msg.TxID != req.TransactionID || msg.Type.Method != stun.MethodBinding {
			continue // not ours (a server may send indications)
		}
		if len(unknown) > 0 && msg.Type.Class == stun.ClassSuccessResponse {
			// RFC 8489 §7.3.3: such a response fails the transaction.
			return fail(fmt.Errorf("response has unknown comprehension-required attributes %v", unknown))
		}
		switch msg.Type.Class {
		case stun.ClassErrorResponse:
			return fail(msg.serverError())
		case stun.ClassSuccessResponse:
			if !msg.Mapped.IsValid() {
				return fail(errors.New("response has no (XOR-)MAPPED-ADDRESS"))
			}
			return msg.Mapped, nil
		}
	}
}
