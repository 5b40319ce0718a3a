// Package netcheck tells how the NATs between this host and a tcpunch
// server treat TCP, and so whether direct TCP punching can work from here:
// the mapping (endpoint-independent, address-dependent or
// address-and-port-dependent, from Bindings sent from one reused port to
// the server's two addresses and ports), port preservation, the filtering
// of unsolicited SYNs (accepted, RST or silent, from a dial-back of the
// server's alternate address to a listener on the reused port),
// hairpinning and the round-trip time, for IPv4 and IPv6 each.
//
// Every answer is three-valued: a value, or "not measured" with why. A
// server without a second address (tcpunch serve without --alt-addr)
// yields "not measured" for the filtering and for the mapping tests that
// need two addresses, never a guess.
//
// It is a package of its own, above package rendezvous (whose Probe,
// BindingFrom and DialBack it composes) and beside package punch (which
// only needs the quick mapping check rendezvous does inside Register and
// Connect): the full check opens listeners and extra connections and
// waits out a dropping NAT's silence, which a punch must not.
//
// Do not use it against servers other than tcpunch's: plain STUN servers
// know no dial-back, and many send OTHER-ADDRESS without holding it.
package netcheck
