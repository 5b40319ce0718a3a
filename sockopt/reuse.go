package sockopt

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrUnsupported is returned by [Control] on systems where a listener and
// outgoing connections cannot share a local port.
// It matches errors.ErrUnsupported.
var ErrUnsupported error = unsupported("sockopt: port reuse is not supported on this operating system")

// Control makes the socket behind c reusable: a listener and outgoing
// connections may then bind the same local address and port. It has the
// signature of [net.Dialer.Control] and [net.ListenConfig.Control]. Both the
// error of c.Control and the error of each setsockopt are returned; none is
// dropped.
func Control(network, address string, c syscall.RawConn) error {
	return control(c, fmt.Sprintf("making %s %s reusable", network, address), setReuse)
}

// ListenConfig returns a ListenConfig whose sockets use [Control]. Listening
// through it (rather than a raw listen(2)) keeps Go's backlog, which follows
// the kernel's somaxconn.
func ListenConfig() *net.ListenConfig {
	return &net.ListenConfig{Control: Control}
}

// Dialer returns a Dialer that dials from local using [Control], so it may
// share local with a listener made by [ListenConfig] and with other dialers.
// A zero port in local lets the kernel choose one.
func Dialer(local netip.AddrPort) *net.Dialer {
	return &net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(local),
		Control:   Control,
	}
}
