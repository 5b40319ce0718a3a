package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/pion/stun/v3"
)

// DialRelay opens our leg of the relay session that token admits us to,
// as role (the role our peer info gave us), and returns it once the other
// peer's leg joined too: from then on the connection carries the other
// peer's bytes through the server. The leg is a fresh connection from any
// local port (it needs no NAT mapping of its own). ctx bounds the wait for
// the other peer, which the server bounds too (the token's life, 60 s by
// default).
//
// A refusal (token unknown, expired, already used or presented from
// another address; relay limits) matches [ErrRelayRefused] and wraps the
// server's *ServerError.
func DialRelay(ctx context.Context, server string, token RelayToken, role Role, opts ...ClientOption) (*RelayConn, error) {
	cfg := newClientConfig(opts)
	if cfg.err != nil {
		return nil, fmt.Errorf("rendezvous: relay via %s: %w", server, cfg.err)
	}
	if token.IsZero() || !role.valid() {
		return nil, fmt.Errorf("rendezvous: relay via %s: %w: a token and a role are required", server, ErrInvalidOption)
	}
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: cfg.keepAlive, Interval: cfg.keepAlive, Count: 3}}
	dctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
	nc, err := d.DialContext(dctx, "tcp", server)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("rendezvous: relay: connecting to %s: %w", server, err)
	}
	tc := nc.(*net.TCPConn)
	stop := context.AfterFunc(ctx, func() { _ = tc.SetDeadline(aLongTimeAgo) })
	rc, err := relayHandshake(tc, token, role, cfg)
	if !stop() || err != nil {
		tc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("rendezvous: relay via %s: waiting for the other peer: %w", server, ctx.Err())
		}
		return nil, fmt.Errorf("rendezvous: relay via %s: %w", server, err)
	}
	_ = tc.SetNoDelay(true)
	return rc, nil
}

func relayHandshake(tc *net.TCPConn, token RelayToken, role Role, cfg *clientConfig) (*RelayConn, error) {
	req := &message{Type: stun.NewType(methodRelay, stun.ClassRequest), TxID: newTxID(), RelayToken: token, Role: byte(role)}
	var m stun.Message
	if err := req.encode(&m); err != nil {
		return nil, err
	}
	if _, err := tc.Write(m.Raw); err != nil {
		return nil, fmt.Errorf("sending the Relay request: %w", err)
	}
	// Exact reads: the first relay frame may follow the answer at once.
	for {
		raw, err := readFrame(tc, nil, cfg.maxMessage, nil)
		if err != nil {
			if errors.Is(err, errNotSTUN) {
				return nil, fmt.Errorf("the server does not speak the relay protocol: %w", err)
			}
			return nil, fmt.Errorf("waiting for the relay's answer: %w", err)
		}
		resp, _, err := decodeMessage(raw)
		if err != nil {
			return nil, fmt.Errorf("the relay's answer: %w", err)
		}
		if resp.TxID != req.TxID || resp.Type.Method != methodRelay {
			continue // e.g. a Ping or a Goodbye-less close race: not ours
		}
		if resp.Type.Class == stun.ClassErrorResponse {
			return nil, fmt.Errorf("%w: %w", ErrRelayRefused, resp.serverError())
		}
		return newRelayConn(tc), nil
	}
}
