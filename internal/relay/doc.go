// Package relay moves bytes between a punched connection and what the user
// attached to it: the terminal (stdin/stdout, like nc), another TCP
// connection (like socat or ssh -L), or a child process.
//
// Every path half-closes: the end of one direction is passed on with
// CloseWrite, and a relay finishes only when both directions have. That is
// what makes `tcpunch dial NAME < file` deliver every byte and exit.
//
// It is internal to the tcpunch command; applications embedding tcpunch use
// the net.Conn from package punch directly.
package relay
