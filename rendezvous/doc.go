// Package rendezvous lets two peers behind NATs find each other so they can
// open one direct TCP connection by simultaneous open, and relays the pairs
// that cannot.
//
// A listener (a service behind a NAT) calls [Register] with a name and keeps
// its control connection open; a dialer calls [Connect] with that name. The
// [Server] hands each side the other's candidate endpoints (the address it
// observed first, then the peer's host addresses), a role and a random
// session tag, and sends both so that they arrive at the same moment. The
// punch itself is the job of package punch.
//
// Every control message is a STUN message (RFC 8489) over TCP: a plain
// Binding request to a tcpunch server returns the client's mapped address,
// as any STUN server would, and [MappedAddress] queries any STUN-over-TCP
// server. docs/PROTOCOL.md specifies the wire protocol.
//
// Both clients connect from the peer's reused local port (see package
// sockopt): the NAT mapping the server observes is the one the punch uses.
//
// When no direct connection is possible (a symmetric NAT), the server
// relays, within the operator's limits: peer info carries a one-time
// [RelayToken], and [DialRelay] opens a peer's leg of the relay session.
// The server splices the two legs (splice(2) on Linux) and reads only frame
// headers; it ends a session for a limit with an END frame that says why
// ([RelayEndedError]). It carries whatever the peers send: encrypt end to
// end above it.
//
// Do not use this package for:
//   - authenticating the peer: the server checks who may use a name, not
//     what arrives on the punched connection. A protected name ("pk-" and
//     the hash of an Ed25519 key, see [ProtectedName] and [WithOwnerKey])
//     can only be registered or connected to by a holder of the key; any
//     other name is open to whoever reaches the server first. Either way,
//     authenticate the punched connection end to end;
//   - UDP: it is TCP only.
//
// # Options
//
// Servers and clients take functional options (With...). An option never
// clamps a value: one that means nothing is an error matching
// [ErrInvalidOption], returned by [Server.Serve] and [Server.ListenAndServe]
// for a server, and by [Register], [Connect] and [MappedAddress] for a
// client, before anything is sent. What zero and negative values mean:
//
//	option                       zero                          negative
//	WithLogger(nil)              nil discards, as the default  -
//	WithMaxMessageSize(n)        error (n must be 20..65555)   error
//	WithKeepAlive(d)             error                         error
//	WithMaxNameLength(n)         error (n must be 1..255)      error
//	WithNameValidator(nil)       nil keeps the default rule    -
//	WithMaxCandidates(n)         no host candidates admitted   error
//	WithMaxConnsPerIP(n)         no cap                        error
//	WithMaxConns(n)              no cap                        error
//	WithReadTimeout(d)           error                         error
//	WithIdleTimeout(d)           error                         error
//	WithWriteTimeout(d)          error                         error
//	WithPingTimeout(d)           error                         error
//	WithKernelRTT(bool)          -                             -
//	WithBackoff(min, max)        error (min > 0, max >= min)   error
//	WithRequestTimeout(d)        error                         error
//	WithRelay(bool)              -                             -
//	WithRelaySessions(t, s)      no cap                        error
//	WithRelayRate(n)             unlimited                     error
//	WithRelayMaxBytes(n)         unlimited                     error
//	WithRelayIdleTimeout(d)      error                         error
//	WithRelayMaxDuration(d)      unlimited                     error
//	WithRelayTokenTTL(d)         error                         error
//	WithOwnerKey(nil)            nil means no key              - (not 64 bytes: error)
//	WithRegisterRate(r, b) etc.  r 0: no limit; b 0: error     error (NaN, ±Inf: error)
//	WithSourcePrefix(v4, v6)     /0: one source for all        error (> 32, > 128: error)
//	WithMaxRateEntries(n)        error                         error
//	WithAltAddr(ap)              port 0: the kernel chooses    -
//	WithDialBack(d, burst, n)    error                         error
//	WithNATCheck(bool)           -                             -
//	WithLoopbackCandidates(bool) -                             -
//	WithTracer(nil)              nil is NopTracer, the default -
//	WithSessionCancelled(nil)    nil: Cancels are ignored      -
//	WithPeerRefused(nil)         nil: no callback              -
package rendezvous
