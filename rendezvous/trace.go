package rendezvous

import (
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// The server's calls into its Tracer (WithTracer). Each call site in the
// server is one line naming one of these helpers, so the accounting stays
// in this file: what is counted where, and how it maps onto the Tracer's
// fixed sets.

func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return FamilyIPv4
	}
	return FamilyIPv6
}

// refusalOf names the limit behind a Goodbye code of the connection limiter.
func refusalOf(code int) Refusal {
	switch code {
	case CodeCapacity:
		return RefusedCapacity
	case CodeTooManyConns:
		return RefusedPerIP
	case CodeShuttingDown:
		return RefusedShuttingDown
	}
	return RefusedRateLimit
}

// traceRefusedConn counts a connection turned away at accept (a limit, or
// the server closing), beside the refusal itself.
func (s *Server) traceRefusedConn(remote netip.AddrPort, why Refusal) {
	s.cfg.tracer.ConnAccepted(familyOf(remote.Addr()), why)
	s.cfg.tracer.Refused(why)
}

// traceServedConn counts a connection the server serves.
func (s *Server) traceServedConn(c *peerConn) {
	s.cfg.tracer.ConnAccepted(familyOf(c.remote.Addr()), RefusedNone)
}

// traceClosed counts the end of a served connection (once: close runs its
// body once).
func (c *peerConn) traceClosed() {
	c.s.cfg.tracer.ConnClosed(familyOf(c.remote.Addr()), time.Since(c.accepted))
}

// traceAnswer counts a response the server sends, which answers exactly
// one request: every answer goes through send, or for a Connect's peer
// info through sendRaw, so every request answered is counted once. A
// request refused because the server drains counts as a refusal too.
func (c *peerConn) traceAnswer(t stun.MessageType, code int) {
	switch t.Class {
	case stun.ClassSuccessResponse:
		code = 0
	case stun.ClassErrorResponse:
		if code == 0 {
			code = CodeServerError
		}
	default:
		return
	}
	c.s.cfg.tracer.Request(requestMethodOf(t.Method), code)
	if code == CodeShuttingDown {
		c.s.cfg.tracer.Refused(RefusedShuttingDown)
	}
}

// traceRawAnswer is traceAnswer for a message encoded ahead (sendRaw
// writes only peer infos: a PeerInfo indication, or a Connect's success).
func (c *peerConn) traceRawAnswer(b []byte) {
	if len(b) < headerSize {
		return
	}
	if t, _ := headerOf(b); t.Class == stun.ClassSuccessResponse {
		c.traceAnswer(t, 0)
	}
}

func requestMethodOf(m stun.Method) RequestMethod {
	switch m {
	case stun.MethodBinding:
		return MethodBindingRequest
	case methodRegister:
		return MethodRegisterRequest
	case methodConnect:
		return MethodConnectRequest
	case methodPing:
		return MethodPingRequest
	case methodRelay:
		return MethodRelayRequest
	case methodDialBack:
		return MethodDialBackRequest
	}
	return MethodOtherRequest
}

// pairTimes are the moments of one pairing the Tracer is told about.
type pairTimes struct {
	arrived      time.Time // the Connect request reached pair
	sentL, sentD time.Time // each peer-info's write returned
}

// sent records when a peer info's write returned, if it succeeded.
func (t *pairTimes) sent(at *time.Time, err error) error {
	if err == nil {
		*at = time.Now()
	}
	return err
}

// tracePaired counts a pairing that sent both peer-infos, with the
// server's estimate of how far apart they arrive: each arrives about RTT/2
// after its write. A pairing one of whose writes failed is not counted.
func (s *Server) tracePaired(t pairTimes, rttL, rttD time.Duration, srcL, srcD string) {
	if t.sentL.IsZero() || t.sentD.IsZero() {
		return
	}
	arriveL := t.sentL.Add(rttL / 2)
	arriveD := t.sentD.Add(rttD / 2)
	skew := arriveL.Sub(arriveD)
	if skew < 0 {
		skew = -skew
	}
	last := t.sentL
	if t.sentD.After(last) {
		last = t.sentD
	}
	s.cfg.tracer.Paired(Pairing{
		Latency:   last.Sub(t.arrived),
		Skew:      skew,
		RTTSource: lessPrecise(srcL, srcD),
	})
}

// lessPrecise is the worse of two RTT sources: kernel, then ping, then
// last-ping.
func lessPrecise(a, b string) string {
	rank := func(s string) int {
		switch s {
		case "kernel":
			return 0
		case "ping":
			return 1
		}
		return 2
	}
	if rank(a) >= rank(b) {
		return a
	}
	return b
}

// relayEndOf maps an END code (0: both peers closed) onto the Tracer's
// fixed set of reasons.
func relayEndOf(code int) RelayEnd {
	switch code {
	case 0:
		return RelayEndClosed
	case RelayCodeIdle:
		return RelayEndIdle
	case RelayCodeByteLimit:
		return RelayEndByteLimit
	case RelayCodeTimeLimit:
		return RelayEndTimeLimit
	case RelayCodeShutdown:
		return RelayEndShuttingDown
	}
	return RelayEndError // RelayCodeProtocol, RelayCodePeerGone: a leg broke or misbehaved
}

// traceRelayStarted counts a relay session whose two legs were answered.
func (s *relaySession) traceRelayStarted(t Tracer) { t.RelayStarted() }

// traceRelayEnded counts the end of a session traceRelayStarted counted:
// up is the controlling peer's (the dialer's) direction.
func (s *relaySession) traceRelayEnded(t Tracer, code int) {
	t.RelayEnded(RelaySession{
		BytesUp:   s.dirs[0].forwards,
		BytesDown: s.dirs[1].forwards,
		Duration:  time.Since(s.start),
		Reason:    relayEndOf(code),
	})
}
