// Package relay moves bytes between a *punch.Conn (punched or relayed by the
// rendezvous server, over the secure link) and what the user attached to it:
// the terminal (stdin/stdout, like nc), another TCP connection (like socat or
// ssh -L), or a child process (over pipes, never the socket, which carries
// TLS). It has nothing to do with the rendezvous server's relay.
//
// Every path half-closes: the end of one direction is passed on with
// CloseWrite, and a relay finishes only when both directions have. That is
// what makes `tcpunch dial CODE < file` deliver every byte and exit; the
// Confirmed variants end with punch.Conn.Finish, so exit 0 means the peer's
// application read everything (and exit 5 says how much it did not).
//
// It is internal to the tcpunch command; applications embedding tcpunch use
// the net.Conn from package punch directly.
package relay
