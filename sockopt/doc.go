// Package sockopt sets the socket options a TCP hole puncher needs, one
// build-tagged file per operating system.
//
// The central piece is [Control], a control function for [net.Dialer] and
// [net.ListenConfig] that lets a listener and any number of outgoing
// connections share one local address and port. [ListenConfig] and [Dialer]
// return ready-made values bound to a local address, so callers never repeat
// that boilerplate.
//
// On Linux, macOS and the BSDs Control sets SO_REUSEADDR and SO_REUSEPORT,
// each with its own setsockopt call: the two option names are distinct
// numbers, and OR-ing them (SO_REUSEADDR|SO_REUSEPORT) names a third,
// unrelated option. On Windows only SO_REUSEADDR exists and is set; there it
// already allows several sockets on one port. Elsewhere Control fails with
// [ErrUnsupported].
//
// [RTT] reads the kernel's smoothed round-trip time of a TCP connection
// where the kernel exposes it (Linux TCP_INFO), so callers can avoid an extra
// round trip to measure it.
//
// A hole puncher also needs to control how its dial attempts end and retry:
// [AbortOnClose] (an abandoned attempt frees its 4-tuple at once),
// [RetransmitSYN] and [RestoreRetransmit] (the kernel resends an unanswered
// SYN on the same socket, on a fixed timer), and [State] (whether an attempt
// has already received the peer's SYN).
//
// This package does not decide when to reuse a port; that is the punch
// engine's job. Use it directly only to build your own socket plumbing.
package sockopt
