package rendezvous

import (
	"sync"

	"github.com/pion/stun/v3"
)

// Cancel and Refuse: the server keeps, for every pairing whose peer info
// went out, which listener and dialer it joined, keyed by the session tag.
//
//   - When the dialer's control connection closes, the server sends the
//     listener a Cancel indication with the tag: a dialer that left must
//     not keep the listener punching for nobody. A listener whose punch
//     has already succeeded ignores it.
//   - A listener that will not punch for a dialer (it is at its cap of
//     concurrent punches) sends a Refuse indication with the tag and an
//     ERROR-CODE; the server relays it to that dialer, which stops its
//     punch with the listener's reason.
const (
	methodCancel stun.Method = 0xC06 // indication, server → listener: the dialer of SESSION-TAG left
	methodRefuse stun.Method = 0xC07 // indication, listener → server → dialer: SESSION-TAG refused, ERROR-CODE says why
)

type pairing struct{ l, d *peerConn }

// sessionTable maps session tags to live pairings. An entry lives from the
// pairing's first send until the dialer's connection closes, so the table
// is bounded by the connections the server holds.
type sessionTable struct {
	mu sync.Mutex
	m  map[[tagSize]byte]pairing
}

func newSessionTable() *sessionTable { return &sessionTable{m: make(map[[tagSize]byte]pairing)} }

// open records the pairing of l and d under tag unless d has left already;
// it reports whether the pairing may go ahead.
func (t *sessionTable) open(tag [tagSize]byte, l, d *peerConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return false
	}
	d.tag, d.hasTag = tag, true
	t.mu.Lock()
	t.m[tag] = pairing{l: l, d: d}
	t.mu.Unlock()
	return true
}

func (t *sessionTable) lookup(tag [tagSize]byte) (pairing, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[tag]
	return p, ok
}

func (t *sessionTable) remove(tag [tagSize]byte) (pairing, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[tag]
	delete(t.m, tag)
	return p, ok
}

// dialerGone runs when d's connection closes: if d was paired, its
// listener is told to stop the punch.
func (s *Server) dialerGone(d *peerConn) {
	d.mu.Lock()
	d.gone = true
	tag, ok := d.tag, d.hasTag
	d.mu.Unlock()
	if !ok {
		return
	}
	p, ok := s.sessions.remove(tag)
	if !ok {
		return
	}
	select {
	case <-p.l.closed:
		return
	default:
	}
	s.stats.cancels.add()
	p.l.log.Debug("dialer left; cancelling its punch", "dialer", d.remote.String())
	// Off the closing goroutine: the write may take up to the write timeout.
	go func() {
		_ = p.l.send(&message{Type: stun.NewType(methodCancel, stun.ClassIndication), TxID: newTxID(), Tag: tag, HasTag: true})
	}()
}

// refused relays a listener's Refuse indication to the dialer of its tag.
func (c *peerConn) refused(msg *message) {
	if !msg.HasTag {
		c.log.Debug("refuse without a session tag ignored")
		return
	}
	p, ok := c.s.sessions.lookup(msg.Tag)
	if !ok || p.l != c {
		c.log.Debug("refuse for a session not ours ignored")
		return
	}
	code, reason := msg.Code, msg.Reason
	if code < 300 || code > 699 {
		code, reason = CodeListenerBusy, "the listener refused"
	}
	c.s.stats.refusals.add()
	c.log.Info("listener refused a dialer", "dialer", p.d.remote.String(), "code", code, "reason", reason)
	_ = p.d.send(&message{Type: stun.NewType(methodRefuse, stun.ClassIndication), TxID: newTxID(),
		Tag: msg.Tag, HasTag: true, Code: code, Reason: reason})
}
