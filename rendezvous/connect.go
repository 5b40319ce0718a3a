package rendezvous

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/pion/stun/v3"
)

// Connect asks the server at address server to introduce us, from local
// (the peer's reused port; port 0 lets the kernel choose), to the listener
// registered as name. candidates are our host endpoints. It returns the
// listener's candidates and the session, and the control connection: keep
// it open during the punch (it holds the NAT mapping the server observed)
// and close it after. The io.Closer is also a [Reporter]: report the
// punch's outcome on it before closing it.
//
// While the server cannot be reached, or the connection breaks before the
// answer (a server restart), Connect retries with the backoff of
// [WithBackoff] until ctx ends. A name nobody holds gives an error matching
// ErrUnknownName at once; other server refusals are *ServerError; an
// invalid option gives an error matching ErrInvalidOption before anything
// is sent.
func Connect(ctx context.Context, server string, local netip.AddrPort, name string, candidates []netip.AddrPort, opts ...ClientOption) (PeerInfo, io.Closer, error) {
	cfg := newClientConfig(opts)
	if cfg.err != nil {
		return PeerInfo{}, nil, fmt.Errorf("rendezvous: connect to %q via %s: %w", name, server, cfg.err)
	}
	if err := checkWireName(name); err != nil {
		return PeerInfo{}, nil, err
	}
	if err := cfg.checkOwnerName(name); err != nil {
		return PeerInfo{}, nil, fmt.Errorf("rendezvous: connect to %q via %s: %w", name, server, err)
	}
	type connected struct {
		pi PeerInfo
		c  *controlConn
	}
	res, err := retrying(ctx, cfg, cfg.log.With("server", server, "name", name), func(ctx context.Context) (connected, error) {
		c, err := dialControl(ctx, server, local, cfg)
		if err != nil {
			return connected{}, err
		}
		req := &message{Type: stun.NewType(methodConnect, stun.ClassRequest), TxID: newTxID(), Name: name, Candidates: candidates}
		var resp *message
		var class NATClass
		if cfg.natCheck {
			resp, class, err = c.checkedRequest(ctx, server, local.Addr(), req) // quickcheck.go
		} else {
			resp, err = c.request(ctx, req)
		}
		if err == nil {
			var pi PeerInfo
			if pi, err = peerInfoFrom(resp, roleControlling); err == nil {
				pi.LocalClass = class
				c.log.Debug("peer info", "name", name, "candidates", pi.Candidates, "rtt", resp.RTT, "delay", resp.Delay)
				return connected{pi, c}, nil
			}
		}
		c.Close()
		return connected{}, err
	})
	if err != nil {
		return PeerInfo{}, nil, fmt.Errorf("rendezvous: connect to %q via %s: %w", name, server, err)
	}
	res.c.startDrain()
	return res.pi, res.c, nil
}
