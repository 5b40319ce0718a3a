package rendezvous

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun/v3"
)

func (c *peerConn) handle(msg *message, unknown []stun.AttrType) {
	switch msg.Type.Class {
	case stun.ClassRequest:
		if len(unknown) > 0 {
			c.log.Info("request with unknown comprehension-required attributes", "method", msg.Type.Method.String(), "attrs", unknown)
			resp := errorResponse(msg, CodeUnknownAttribute, "Unknown Attribute")
			resp.UnknownIn = unknown
			_ = c.send(resp)
			return
		}
		switch msg.Type.Method {
		case stun.MethodBinding:
			// Exactly what any STUN server answers: the source address,
			// XOR-encoded, and FINGERPRINT if the request carried one.
			// With an alternate address, also where to send the next
			// Binding of a NAT behaviour test (RFC 5780).
			other, origin := c.bindingAddrs()
			_ = c.send(&message{Type: stun.BindingSuccess, TxID: msg.TxID, Mapped: c.remote, Software: software, Fingerprnt: msg.Fingerprnt,
				Other: other, Origin: origin})
		case methodRegister:
			c.register(msg)
		case methodConnect:
			c.connect(msg)
		case methodRelay:
			c.relayRequest(msg) // relay_session.go
		case methodDialBack:
			c.dialBack(msg)
		case methodPing:
			_ = c.send(&message{Type: stun.NewType(methodPing, stun.ClassSuccessResponse), TxID: msg.TxID})
		default:
			c.log.Info("request with unknown method", "method", msg.Type.Method.String())
			_ = c.send(errorResponse(msg, CodeBadRequest, "unknown method "+msg.Type.Method.String()))
		}
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		if msg.Type.Method == methodPing {
			c.pingAnswered(msg.TxID)
			return
		}
		c.log.Debug("unexpected response ignored", "type", msg.Type.String())
	case stun.ClassIndication:
		if msg.Type.Method == methodReport {
			c.punchReported(msg, unknown)
			return
		}
		// A Binding indication is a STUN keepalive: nothing to do. Other
		// indications are the server's own; a client has no business
		// sending them.
		switch msg.Type.Method {
		case stun.MethodBinding:
		case methodClassUpdate: // classupdate.go
			c.classUpdated(msg)
		case methodRefuse: // cancel.go
			if c.isListener() {
				c.refused(msg)
			}
		default:
			c.log.Debug("indication ignored", "type", msg.Type.String())
		}
	}
}

// checkFirst validates what Register and Connect share: one of them per
// connection, a name the server's rule accepts, sane candidates. On a
// failure it has answered 400 and ok is false.
func (c *peerConn) checkFirst(req *message) (cands []netip.AddrPort, ok bool) {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	if role != 0 {
		// One Register or Connect per connection: a flood of peer-infos to
		// a listener then costs the attacker a connection each, which the
		// per-IP cap bounds.
		_ = c.send(errorResponse(req, CodeBadRequest, "this connection already registered or connected"))
		return nil, false
	}
	if err := c.s.cfg.nameRule(req.Name); err != nil {
		_ = c.send(errorResponse(req, CodeBadRequest, "bad name: "+err.Error()))
		return nil, false
	}
	cands, err := c.s.checkCandidates(req.Candidates)
	if err != nil {
		_ = c.send(errorResponse(req, CodeBadRequest, err.Error()))
		return nil, false
	}
	return cands, true
}

func (c *peerConn) register(req *message) {
	cands, ok := c.checkFirst(req)
	if !ok {
		return
	}
	// A protected name is proven first and, once proven, is not charged to
	// its source's bucket: otherwise anyone behind the owner's address
	// (same host, same NAT) could keep the owner from registering again
	// after a server restart by spending the bucket on requests the owner
	// proof refuses anyway. Challenges stay bounded per connection.
	if IsProtectedName(req.Name) {
		if !c.checkOwner(req) { // ownerproof.go
			return
		}
	} else if !c.allowRegister(req) || !c.checkOwner(req) { // ratelimit.go, ownerproof.go
		return
	}
	if c.s.isClosing() {
		_ = c.send(errorResponse(req, CodeShuttingDown, "server shutting down"))
		return
	}
	old, resume, ok := c.s.reg.claimResumable(req, c)
	if !ok {
		c.log.Info("registration refused: name taken", "name", req.Name)
		_ = c.send(errorResponse(req, CodeNameTaken, fmt.Sprintf("name %q is held by another listener", req.Name)))
		return
	}
	if old != nil {
		c.log.Info("name resumed: closing the listener's stale connection", "name", req.Name, "stale", old.remote.String())
		old.goodbye(CodeNameTaken, "name resumed by a newer connection of its listener")
		old.close()
	}
	c.mu.Lock()
	c.role, c.name, c.cands = roleControlled, req.Name, cands
	c.announceClassLocked(req)
	c.mu.Unlock()
	select {
	case <-c.closed: // closed meanwhile: close() may have missed the name
		c.s.reg.release(req.Name, c)
		return
	default:
	}
	c.log.Info("registered", "name", req.Name, "candidates", len(cands))
	_ = c.send(&message{Type: stun.NewType(methodRegister, stun.ClassSuccessResponse), TxID: req.TxID, Mapped: c.remote, Name: req.Name, Resume: resume, HasResume: true})
	c.startKeepAlive()
}

func (c *peerConn) connect(req *message) {
	cands, ok := c.checkFirst(req)
	if !ok || !c.allowConnect(req) || !c.checkOwner(req) { // ratelimit.go, ownerproof.go
		return
	}
	c.mu.Lock()
	c.role, c.name, c.cands = roleControlling, req.Name, cands
	c.announceClassLocked(req)
	c.mu.Unlock()
	if !c.s.beginPair() {
		_ = c.send(errorResponse(req, CodeShuttingDown, "server shutting down"))
		return
	}
	// Pairing waits for pings whose answers this goroutine reads: it must
	// run beside it.
	go func() {
		defer c.s.pairWG.Done()
		c.s.pair(c, req, cands)
	}()
	c.startKeepAlive()
}

func (s *Server) checkCandidates(in []netip.AddrPort) ([]netip.AddrPort, error) {
	if len(in) > s.cfg.maxCands {
		return nil, fmt.Errorf("too many candidates: %d, at most %d", len(in), s.cfg.maxCands)
	}
	out := make([]netip.AddrPort, 0, len(in))
	for _, a := range in {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !validCandidate(a) {
			return nil, fmt.Errorf("invalid candidate %v", a)
		}
		out = append(out, a)
	}
	return out, nil
}

func (c *peerConn) isListener() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role == roleControlled
}
