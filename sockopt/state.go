package sockopt

import (
	"syscall"
)

// TCPState is where a TCP socket is in its handshake, as the kernel says.
type TCPState uint8

const (
	StateOther       TCPState = iota // any state not listed here
	StateSynSent                     // our SYN is out; nothing back yet
	StateSynReceived                 // a SYN came in (simultaneous open, or a listener's embryonic connection)
	StateEstablished
)

func (s TCPState) String() string {
	switch s {
	case StateSynSent:
		return "SYN-SENT"
	case StateSynReceived:
		return "SYN-RECV"
	case StateEstablished:
		return "ESTABLISHED"
	}
	return "other"
}

// ErrNoState is returned by [State] where the kernel does not expose a
// socket's TCP state.
// It matches errors.ErrUnsupported.
var ErrNoState error = unsupported("sockopt: TCP state is not available on this operating system")

// State returns the TCP state of the socket behind c. It may be called
// while a connect is in progress on another goroutine (c from a dialer's
// Control function), which is what it is for: a hole puncher must not
// abandon an attempt that has already received the peer's SYN, because a
// new socket on the same 4-tuple starts with a new initial sequence number
// that a Linux NAT's connection tracking then rejects as out of window.
func State(c syscall.RawConn) (TCPState, error) {
	var st TCPState
	err := control(c, "reading TCP state", func(fd uintptr) (err error) {
		st, err = kernelState(fd)
		return err
	})
	return st, err
}
