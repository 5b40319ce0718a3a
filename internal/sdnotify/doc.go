// Package sdnotify tells systemd how a Type=notify service is doing
// (READY=1 once it serves, STOPPING=1 when it drains), by the sd_notify(3)
// datagram protocol: one unixgram datagram to $NOTIFY_SOCKET.
//
// It needs no library: the protocol is one write. Without $NOTIFY_SOCKET
// (not started by systemd, or not Type=notify) and on other systems than
// Linux it does nothing.
package sdnotify

// States to send; several may be joined with newlines.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)
