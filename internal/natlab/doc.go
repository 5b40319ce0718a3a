// Package lab builds small real-NAT networks out of Linux network namespaces,
// so tcpunch can be tested (and demonstrated) against the kernel's own NAT and
// TCP stack rather than a simulation.
//
// A [Lab] is one topology: an "internet" namespace holding a bridge on
// 203.0.113.0/24 and 2001:db8::/64 (documentation prefixes), a rendezvous
// host on that bridge, and whatever routers and hosts the caller adds:
//
//	rendezvous 203.0.113.2 ─┐
//	public hosts ───────────┤ internet bridge (203.0.113.0/24, 2001:db8::/64)
//	router "a" WAN ─────────┤
//	                        └ router "b" WAN ...
//	router "a" LAN bridge 10.0.N.1/24, 2001:db8:0:N::1/64 ── peers 10.0.N.10, ...
//
// Routers are NATs built from nftables with the behaviours seen in the field
// ([NATKind]): a home router that silently drops unsolicited packets, one that
// answers them with a TCP RST, one with no input filter, and a symmetric NAT
// (masquerade fully-random). A router may sit behind another (double NAT) and
// several peers may share one router (Linux masquerade does not hairpin, so
// they must talk over the LAN). IPv6 is routed without NAT through the same
// routers, with a stateful firewall of the same kind. Every address used lies
// inside the lab's namespaces; nothing leaves the machine.
//
// [Lab.SetDelay] and [Lab.SetLoss] emulate a WAN link (one-way delay and
// random loss, each direction) with a user-space NFQUEUE stage that runs
// in-process: this kernel has no netem qdisc and no nft queue statement, but
// the iptables NFQUEUE target works. See delay_linux.go for the design.
//
// Code runs inside a namespace in two ways: [Host.Command] returns an
// *exec.Cmd that runs under `ip netns exec`, and [Host.Do] runs a Go function
// on an OS thread switched into the namespace, so sockets made by net.Dial or
// net.Listen inside it belong to that namespace.
//
// Everything is torn down by [Lab.Close]: processes started in the lab are
// killed (their process groups, then whatever is still in each namespace),
// the WAN stages stop, and the namespaces are deleted. Names carry a
// pid-and-random prefix so labs in parallel tests never collide; [Sweep]
// removes namespaces left by a process that died without closing its lab.
//
// The lab needs Linux, root (CAP_NET_ADMIN and CAP_SYS_ADMIN), and the tools
// ip (iproute2), nft (nftables) and iptables/ip6tables (iptables, for the
// NFQUEUE rules); conntrack (conntrack) is optional and only used for
// debugging. [Check] reports what is missing and how to install it;
// [Require] turns that into a skip for tests, or a failure when CI=true.
// On other systems every constructor returns [ErrUnsupported].
package natlab
