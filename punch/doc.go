// Package punch is tcpunch's TCP hole-punching engine: it turns a list of the
// peer's candidate endpoints into one verified, direct kernel TCP connection.
//
// An [Endpoint] owns one local port. It listens on that port before anything
// is dialed and then, for each [Endpoint.Punch], dials every candidate from
// the same port (SO_REUSEADDR + SO_REUSEPORT, see package sockopt) while
// accepting. Whichever way the kernel completes a connection (an accepted
// SYN, a successful connect, or a TCP simultaneous open when the two SYNs
// cross in flight), both peers exchange a short hello carrying the session tag
// and their roles before the connection is trusted. The controlling peer then
// nominates exactly one verified connection; both peers close the rest. The
// result is a [*Conn]: an ordinary *net.TCPConn the application owns from its
// first byte, plus [Info] on how it was made.
//
// The engine does not find candidates or agree on the session tag and roles:
// that is the job of a rendezvous (package rendezvous and the Listen/Dial
// functions of this package), or of your own signalling if you embed the
// engine directly.
//
// # Option values
//
// Zero and negative values of the options mean:
//
//	option                 zero                        negative
//	WithAttemptTimeout     error                       error
//	WithVerifyTimeout      error                       error
//	WithPunchTimeout       error                       error
//	WithRetryJitter        0: no pause (min ≤ max)     error
//	WithMaxSYNRate         error                       error
//	WithMaxPunches         error                       error
//	WithKeepAlive          the default, 15 s           keepalive off
//	WithLocalAddr          0.0.0.0, a port the kernel picks (zero AddrPort)
//	WithRelayBudget        error                       error
//	WithRelay              RelayAuto                   - (unknown mode: error)
//	WithLogger, WithEvents nil: discard, no callback
//
// An option given a value it rejects makes [NewEndpoint], [Punch], [Listen]
// and [Dial] return an error that names it; nothing is clamped silently.
// The options of the rendezvous client ([WithRendezvousOptions]) follow
// package rendezvous's rules.
//
// When not to use it: if either peer can accept inbound connections, dial it
// directly; if either side sits behind a symmetric NAT (a new public port
// per destination), punching fails and you need a relay. The punched
// connection is neither encrypted nor authenticated beyond the session tag:
// run TLS, ssh or another secure protocol over it.
package punch
