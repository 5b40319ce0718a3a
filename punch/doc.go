// Package punch is tcpunch's TCP hole-punching engine: it turns a list of the
// peer's candidate endpoints into one verified, direct kernel TCP connection,
// and its [Listen] and [Dial] give two peers behind NATs an authenticated,
// encrypted stream over that connection, or over the rendezvous server's
// relay when no direct path exists.
//
// An [Endpoint] owns one local port. It listens on that port before anything
// is dialed and then, for each [Endpoint.Punch], dials every candidate from
// the same port (SO_REUSEADDR + SO_REUSEPORT, see package sockopt) while
// accepting. Whichever way the kernel completes a connection (an accepted
// SYN, a successful connect, or a TCP simultaneous open when the two SYNs
// cross in flight), both peers exchange a short hello carrying the session tag
// and their roles before the connection is trusted. The controlling peer then
// nominates exactly one verified connection; both peers close the rest. The
// result is a [*Conn] the application owns from its first byte, plus [Info]
// on how it was made (path, method, attempts, authentication).
//
// [Listen] and [Dial] add the rendezvous and the trust, one of [WithSecret]
// (a shared secret: the name is a label only its holders can register or
// dial), [WithCode] (a one-time code: CPace, then TLS) or [WithInsecure]
// (plaintext, first come first served); with none they return [ErrNoAuth].
// With a secret or a code their [*Conn] is TLS 1.3 between the peers, with
// WithInsecure the plain path; in every mode it carries end-of-stream
// confirmation ([Conn.Finish]), on a punched connection or, per [WithRelay],
// a stream the rendezvous server relays (then only ciphertext crosses it,
// unless WithInsecure). It does not embed
// *net.TCPConn and offers no SyscallConn, so nothing can bypass the link.
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
//	WithRetryJitter        0: no pause (min ≤ max)¹    error
//	WithMaxSYNRate         error                       error
//	WithMaxPunches         error                       error
//	WithHandshakeTimeout   error                       error
//	WithKeepAlive          the default, 15 s           keepalive off
//	WithLocalAddr          0.0.0.0, a port the kernel picks (zero AddrPort)
//	WithRelayBudget        error                       error
//	WithRelay              RelayAuto                   - (unknown mode: error)
//	WithLogger, WithEvents nil: discard, no callback
//	WithSecret, WithCode   the zero Secret / Code: error
//
// ¹ A refused attempt still waits the 10 ms floor (see [WithRetryJitter]).
//
// WithSecret, WithCode and WithInsecure exclude each other (giving two is an
// error); giving one twice keeps the last. WithoutOutcomeReport has no value.
//
// An option given a value it rejects makes [NewEndpoint], [Punch], [Listen]
// and [Dial] return an error that names it; nothing is clamped silently.
// The options of the rendezvous client ([WithRendezvousOptions]) follow
// package rendezvous's rules.
//
// When not to use it: if either peer can accept inbound connections, dial it
// directly (with TLS of your own). A pair behind a symmetric NAT (a new
// public port per destination) facing a NAT that filters cannot punch: Listen
// and Dial then relay through the rendezvous server, which costs that
// server's bandwidth and is bound by its operator's limits (run your own
// `tcpunch serve` if those do not fit). The bare engine
// ([Endpoint.Punch], [Punch]) authenticates nothing beyond the session tag
// and encrypts nothing: use it only under your own secure protocol (or use
// Listen and Dial).
package punch
