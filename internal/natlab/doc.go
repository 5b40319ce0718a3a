// Package natlab builds small real-NAT networks out of Linux network namespaces,
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
// answers them with a TCP RST, one with no input filter, and two symmetric
// NATs (masquerade fully-random, and masquerade random). A router may sit behind another (double NAT) and
// several peers may share one router (Linux masquerade does not hairpin, so
// they must talk over the LAN). IPv6 is routed without NAT through the same
// routers, with a stateful firewall of the same kind. Every address used lies
// inside the lab's namespaces; nothing leaves the machine.
//
// Everything is built from Go over netlink, with no helper program: the
// namespaces are bind-mounted under /run/netns as `ip netns add` does (so
// `ip netns exec NAME tcpdump -ni wan` works on a running lab, see
// [Host.Namespace]), links, addresses and routes go through rtnetlink
// handles bound to each namespace, and the rules through nftables netlink.
// An error from a rule quotes the rule in nft syntax, with its table and
// chain.
//
// [Lab.SetDelay] and [Lab.SetLoss] emulate a WAN link (one-way delay and
// random loss, each direction) with a user-space NFQUEUE stage that runs
// in-process: this kernel has no netem qdisc and no nft queue expression,
// so the packets are diverted with the xtables NFQUEUE target through
// nft_compat. See delay_linux.go for the design.
//
// Code runs inside a namespace in two ways: [Host.Command] returns an
// *exec.Cmd that runs a program inside the namespace (this executable
// re-runs itself, enters the namespace before main and execs the program;
// see exec_linux.go), and [Host.Do] runs a Go function on an OS thread
// switched into the namespace, so sockets made by net.Dial or net.Listen
// inside it belong to that namespace. No goroutine other than Do's own is
// ever in a lab namespace.
//
// A lab is also inspected and changed from Go, with nothing installed:
// [Router.ForwardTCP] adds a port forward (DNAT) to a LAN host,
// [Router.Conntrack] (any node's) lists the connection-tracking table over
// netlink, and [Host.Capture] (any node's) records a link's frames into a
// classic pcap file, with [Capture.Contains] to ask whether some bytes
// crossed the link in the clear.
//
// Everything is torn down by [Lab.Close]: captures stop, processes started
// in the lab are killed (their process groups, then whatever is still in
// each namespace),
// the WAN stages stop, and the namespaces are deleted. Names carry a
// pid-and-random prefix so labs in parallel tests never collide; [Sweep]
// removes namespaces left by a process that died without closing its lab.
//
// The lab needs Linux and root (CAP_NET_ADMIN and CAP_SYS_ADMIN), with a
// kernel that has network namespaces, veth, bridge and nf_tables with
// masquerade, reject and nft_compat (every distribution kernel does), and
// nothing installed. [Check] says whether it can run; [Require] turns that
// into a skip for tests, or a failure when CI=true. On other systems every
// constructor returns [ErrUnsupported].
//
// Use it to test or demonstrate code against real NAT and real TCP stacks
// on one machine. Do not use it for anything that must reach beyond the
// machine (its addresses are documentation prefixes and nothing is
// routed out), as a container runtime or network manager (it owns its
// namespaces for its own lifetime only and changes nothing outside them),
// or where root is not available.
//
// Importing this package adds an init function to the program: when the
// program is started with this package's marker argument (only
// [Host.Command] and [Host.CommandPrefix] do that) it becomes the program
// to run inside a namespace. Programs started any other way are unaffected.
package natlab
