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
// rate per source prefix (ratelimit.go) and a cap in flight; it writes a DialBack indication carrying the
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
// address of the requester's address family. Over the dial-back rate, or
// with too many dial-backs in flight, the answer is [CodeTooManyRequests].
const CodeNoAltAddress = 501

// dialBackLimiter bounds dial-backs: a token bucket per source prefix (the
// shared table of ratelimit.go: /32 and /64 by default, bounded memory) and
// a cap on dial-backs in flight, all sources together.
type dialBackLimiter struct {
	rate        *limiter[netip.Prefix]
	inFlightMax int
	mu          sync.Mutex
	inFlight    int
}

func newDialBackLimiter(cfg *serverConfig) *dialBackLimiter {
	r := rate{perSec: 1 / dialBackRefill.Seconds(), burst: float64(cfg.dialBackBurst)}
	return &dialBackLimiter{rate: newLimiter[netip.Prefix](r, cfg.maxRateEntries), inFlightMax: cfg.dialBackInFlight}
}

// acquire takes a slot in flight; release gives it back.
func (l *dialBackLimiter) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight >= l.inFlightMax {
		return false
	}
	l.inFlight++
	return true
}

func (l *dialBackLimiter) release() {
	l.mu.Lock()
	l.inFlight--
	l.mu.Unlock()
}

// allowDialBack checks the source's dial-back bucket and the in-flight cap;
// on refusal it has answered 429 (counted and traced). Unlike the
// Register/Connect limits it keeps the connection: a netcheck that waits
// and asks again is no abuse.
func (c *peerConn) allowDialBack(req *message) bool {
	src := c.s.prefixOf(c.remote.Addr())
	if !c.s.dialBacks.rate.allow(src, time.Now()) {
		c.s.stats.dialBackLimited.add()
		c.s.cfg.tracer.Refused(RefusedRateLimit)
		c.s.badLog.note(src, "rate limited: dial-backs")
		_ = c.send(errorResponse(req, CodeTooManyRequests, "rate limit: too many dial-backs from your network; try again later"))
		return false
	}
	if !c.s.dialBacks.acquire() {
		c.s.stats.dialBackBusy.add()
		c.s.cfg.tracer.Refused(RefusedCapacity)
		_ = c.send(errorResponse(req, CodeTooManyRequests, "too many dial-backs in flight; try again later"))
		return false
	}
	return true
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
	if !c.allowDialBack(req) {
		c.mu.Lock()
		c.dialing = false
		c.mu.Unlock()
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
