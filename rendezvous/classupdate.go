package rendezvous

import (
	"time"

	"github.com/pion/stun/v3"
)

// The class update (docs/PROTOCOL.md, "Quick check in Register/Connect"):
// a client that measures its NAT class while its Register or Connect is
// already on the way marks the request with NAT-CLASS-FOLLOWS and sends the
// class afterwards in a ClassUpdate indication on the same connection,
// exactly once. So the check costs no round trip before the request. The
// server holds a pairing until a class it needs has arrived (bounded by
// classWait): both sides must decide on the path from the same two
// classes, so neither may see a class the other did not.

const (
	methodClassUpdate stun.Method   = 0xC11  // indication, client → server: the NAT-CLASS announced by NAT-CLASS-FOLLOWS
	attrClassFollows  stun.AttrType = 0xFC11 // NAT-CLASS-FOLLOWS, empty: this Register/Connect's class comes in a ClassUpdate
)

// classWait bounds how long a pairing waits for an announced class: longer
// than the client's own bound on its check (quickCheckBudget), so a class
// the client measured in time is never missed.
const classWait = quickCheckBudget + time.Second

// NeedsPeerClass reports whether, with c as one side's class, the other
// side's class can rule a direct path out: a symmetric mapping (which
// fails against another symmetric one) or a filter that refuses
// unsolicited SYNs (which fails against a symmetric peer). It mirrors
// punch.DirectPossible. When it is false, the verdict is "possible"
// whatever the peer measured, so a pairing need not wait for the peer's
// class.
func (c NATClass) NeedsPeerClass() bool {
	return c.Mapping.Symmetric() || c.Filtering == FilteringRST || c.Filtering == FilteringSilent
}

// announceClass notes, in a Register or Connect handler, whether req's
// class follows; call it with c.mu held.
func (c *peerConn) announceClassLocked(req *message) {
	if !c.classIn { // a ClassUpdate that came first wins
		c.class = req.Class
	}
	if req.ClassFollows && c.classReady == nil {
		c.classReady = make(chan struct{})
	}
}

// classUpdated takes a ClassUpdate, once per connection. It may come
// before the request that announced it (a retried request, an owner proof's
// second round): it is kept for it.
func (c *peerConn) classUpdated(msg *message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.classIn {
		return
	}
	if c.classReady == nil {
		c.classReady = make(chan struct{})
	}
	c.classIn = true
	if msg.HasClass {
		c.class = msg.Class
	}
	close(c.classReady)
}

// awaitClass returns c's class once it is final: at once unless announced
// and not in yet; then until it arrives, c closes or classWait passes
// ("not measured" then, the same on both sides: the late class is ignored).
func (c *peerConn) awaitClass() NATClass {
	c.mu.Lock()
	ready, in := c.classReady, c.classIn
	c.mu.Unlock()
	if ready != nil && !in {
		t := time.NewTimer(classWait)
		defer t.Stop()
		select {
		case <-ready:
		case <-c.closed:
		case <-t.C:
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.classReady != nil && !c.classIn {
		c.classIn = true // too late: what arrives now is ignored
		close(c.classReady)
		c.class = NATClass{}
	}
	return c.class
}
