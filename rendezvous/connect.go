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
// and close it after.
//
// A name nobody holds gives an error matching ErrUnknownName; other server
// refusals are *ServerError.
func Connect(ctx context.Context, server string, local netip.AddrPort, name string, candidates []netip.AddrPort, opts ...ClientOption) (PeerInfo, io.Closer, error) {
	cfg := newClientConfig(opts)
	if err := checkWireName(name); err != nil {
		return PeerInfo{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
	defer cancel()
	c, err := dialCtrl(ctx, server, local, cfg)
	if err != nil {
		return PeerInfo{}, nil, fmt.Errorf("rendezvous: connect to %q: %w", name, err)
	}
	req := &message{Type: stun.NewType(methodConnect, stun.ClassRequest), TxID: newTxID(), Name: name, Candidates: candidates}
	resp, err := c.roundTrip(ctx, req)
	if err == nil {
		var pi PeerInfo
		if pi, err = peerInfoFrom(resp, roleControlling); err == nil {
			c.log.Debug("peer info", "name", name, "candidates", pi.Candidates, "rtt", resp.RTT, "delay", resp.Delay)
			go c.drain()
			return pi, c, nil
		}
	}
	c.Close()
	return PeerInfo{}, nil, fmt.Errorf("rendezvous: connect to %q via %s: %w", name, server, err)
}
