package rendezvous

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v3"
)

// The dial-back (docs/PROTOCOL.md, "DialBack"): a client asks, on a
// connection from its reused port, to be connected to from the server's
// alternate IP. The server dials the endpoint it observed for that
// connection, and no other, so it cannot be aimed at a third party; it
// dials from an ephemeral port (never one it listens on), at a bounded
// rate per source IP; it writes a DialBack indication carrying the
// client's nonce on the new connection, and answers the request with what
// happened: connected, refused (a RST: a rejecting NAT), timeout (a
// dropping NAT) or unreachable. The client, listening on its reused port,
// tells an accepted dial-back by the nonce.

// DialBackResult is how the server's dial-back ended, as it reports it.
type DialBackResult uint8

const (
	DialBackConnected   DialBackResult = 1 + iota // the TCP handshake completed; the nonce was written
	DialBackRefused                               // a RST answered the SYN (ECONNREFUSED)
	DialBackTimeout                               // no answer within the server's dial-back timeout
	DialBackUnreachable                           // an ICMP error (host or network unreachable)
)

func (r DialBackResult) String() string {
	switch r {
	case DialBackConnected:
		return "connected"
	case DialBackRefused:
		return "refused"
	case DialBackTimeout:
		return "timeout"
	case DialBackUnreachable:
		return "unreachable"
	}
	return "unknown"
}

// CodeNoAltAddress answers a DialBack to a server without an alternate
// address of the requester's address family; CodeRateLimited one over the
// rate limit.
const (
	CodeNoAltAddress = 501
	CodeRateLimited  = 429
)

// dialBackLimiter is a token bucket per source IP and a cap on dial-backs
// in flight.
type dialBackLimiter struct {
	burst, inFlightMax int
	mu                 sync.Mutex
	inFlight           int
	buckets            map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newDialBackLimiter(cfg *serverConfig) *dialBackLimiter {
	return &dialBackLimiter{burst: cfg.dialBackBurst, inFlightMax: cfg.dialBackInFlight, buckets: map[netip.Addr]*bucket{}}
}

func (l *dialBackLimiter) acquire(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight >= l.inFlightMax {
		return false
	}
	if len(l.buckets) > 4096 {
		// Forget full buckets: bounded memory whatever the sources.
		for a, b := range l.buckets {
			if b.level(now, l.burst) >= float64(l.burst) {
				delete(l.buckets, a)
			}
		}
	}
	b := l.buckets[ip]
	if b == nil {
		b = &bucket{tokens: float64(l.burst), at: now}
		l.buckets[ip] = b
	}
	b.tokens, b.at = b.level(now, l.burst), now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	l.inFlight++
	return true
}

func (b *bucket) level(now time.Time, burst int) float64 {
	return min(float64(burst), b.tokens+now.Sub(b.at).Seconds()/dialBackRefill.Seconds())
}

func (l *dialBackLimiter) release() {
	l.mu.Lock()
	l.inFlight--
	l.mu.Unlock()
}

func (c *peerConn) dialBack(req *message) {
	if !req.HasDialNonce {
		_ = c.send(errorResponse(req, CodeBadRequest, "DialBack needs DIALBACK-NONCE"))
		return
	}
	alt, ok := c.s.altFor(c.remote.Addr())
	if !ok {
		_ = c.send(errorResponse(req, CodeNoAltAddress, "no alternate address for your address family"))
		return
	}
	c.mu.Lock()
	busy := c.dialing
	c.dialing = true
	c.mu.Unlock()
	if busy {
		_ = c.send(errorResponse(req, CodeBadRequest, "a dial-back of this connection is in flight"))
		return
	}
	if !c.s.dialBacks.acquire(c.remote.Addr(), time.Now()) {
		c.mu.Lock()
		c.dialing = false
		c.mu.Unlock()
		_ = c.send(errorResponse(req, CodeRateLimited, "too many dial-backs; try again later"))
		return
	}
	// serve holds connWG while it runs this handler, so adding is safe.
	c.s.connWG.Add(1)
	go func() {
		defer c.s.connWG.Done()
		defer c.s.dialBacks.release()
		res, took := c.dialBackOnce(req.TxID, req.DialNonce, alt.Addr())
		c.mu.Lock()
		c.dialing = false
		c.mu.Unlock()
		c.log.Info("dial-back", "from", alt.Addr().String(), "result", res.String(), "took", took)
		_ = c.send(&message{Type: stun.NewType(methodDialBack, stun.ClassSuccessResponse), TxID: req.TxID,
			DialNonce: req.DialNonce, HasDialNonce: true, DialResult: res, DialTook: took})
	}()
}

// dialBackOnce connects from ip (an ephemeral port) to the connection's
// observed endpoint and writes the nonce there.
func (c *peerConn) dialBackOnce(txid [stun.TransactionIDSize]byte, nonce [DialBackNonceSize]byte, ip netip.Addr) (DialBackResult, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.dialBackTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
	start := time.Now()
	nc, err := d.DialContext(ctx, "tcp", c.remote.String())
	took := time.Since(start)
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED):
		return DialBackRefused, took
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return DialBackUnreachable, took
	default:
		return DialBackTimeout, took
	}
	defer nc.Close()
	var m stun.Message
	hello := &message{Type: stun.NewType(methodDialBack, stun.ClassIndication), TxID: txid, DialNonce: nonce, HasDialNonce: true}
	if hello.encode(&m) == nil {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write(m.Raw)
	}
	return DialBackConnected, took
}
