package rendezvous

import (
	"fmt"

	"github.com/pion/stun/v3"
)

// WithSessionCancelled has a [Registration] call fn with the session tag
// of every Cancel indication: the dialer of that session left before its
// punch was done, so the listener should stop punching for it. fn runs on
// the registration's reader and must return quickly. Without it Cancels
// are ignored.
func WithSessionCancelled(fn func(tag [16]byte)) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.onCancel = fn })
}

// WithPeerRefused has the control connection returned by [Connect] call fn
// when the listener refuses the session (a Refuse indication relayed by the
// server, e.g. 503 when the listener is at its cap of punches). The error
// is a *ServerError matching [ErrPeerRefused]. fn runs on the connection's
// reader and must return quickly.
func WithPeerRefused(fn func(err error)) ClientOption {
	return clientOptionFunc(func(c *clientConfig) { c.onRefused = fn })
}

// ErrPeerRefused is matched by the error a [WithPeerRefused] callback gets.
var ErrPeerRefused = fmt.Errorf("rendezvous: the listener refused the session")

// PeerRefusedError is the listener's refusal as relayed by the server.
type PeerRefusedError struct{ ServerError }

func (e *PeerRefusedError) Error() string {
	return fmt.Sprintf("rendezvous: the listener refused: %d %s", e.Code, e.Reason)
}

func (e *PeerRefusedError) Is(target error) bool { return target == ErrPeerRefused }

// Refuse tells the server that this listener will not punch for the dialer
// of tag, with code (e.g. [CodeListenerBusy]) and reason; the server relays
// it to that dialer. It is a hint: a connection in the middle of a
// reconnection drops it.
func (r *Registration) Refuse(tag [16]byte, code int, reason string) error {
	r.mu.Lock()
	c := r.cur
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("rendezvous: refusing a session: not connected")
	}
	return c.send(&message{Type: stun.NewType(methodRefuse, stun.ClassIndication), TxID: newTxID(),
		Tag: tag, HasTag: true, Code: code, Reason: reason})
}

// refusal hands a Refuse indication to WithPeerRefused's function and
// reports whether msg was one.
func (c *controlConn) refusal(msg *message) bool {
	if msg.Type.Method != methodRefuse || msg.Type.Class != stun.ClassIndication || c.cfg.onRefused == nil {
		return false
	}
	c.cfg.onRefused(&PeerRefusedError{ServerError{Code: msg.Code, Reason: msg.Reason}})
	return true
}
