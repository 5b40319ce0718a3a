package sockopt

import (
	"fmt"
	"syscall"
)

// AbortOnClose sets SO_LINGER with a zero timeout on the socket behind c,
// so that closing it sends a RST and releases its 4-tuple at once. It has
// the signature of [net.Dialer.Control]; combine it with [Control].
//
// A hole puncher needs it on its dial attempts: an attempt given up in the
// middle of a simultaneous open (SYN-RECV) would otherwise close with a FIN
// and sit in FIN-WAIT-1, retransmitting, while its 4-tuple blocks every
// later attempt between the same two endpoints (EADDRNOTAVAIL). Go closes
// a timed-out dial itself, so the option must be set before connect. Set
// the linger back (SetLinger(-1)) on a connection you keep, or its Close
// will discard unsent data.
func AbortOnClose(network, address string, c syscall.RawConn) error {
	return control(c, fmt.Sprintf("setting SO_LINGER on %s %s", network, address), setLingerZero)
}
