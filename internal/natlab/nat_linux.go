//go:build linux

package natlab

import (
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// natTables are the nftables tables of a router of the given kind. The
// WAN interface is "wan", the LAN bridge "lan".
//
// IPv4 is masqueraded; IPv6 is only routed, and filtered by the same kind
// (the common setup of a home router: a stateful firewall, no NAT66).
// ICMP and ICMPv6 are always accepted: IPv6 breaks without neighbour
// discovery, and the lab studies TCP, not ping.
func natTables(kind NATKind) []nftTable {
	var input, forward []nftRule
	switch kind {
	case NATDrop, NATSymmetric, NATSymmetricRandom:
		// Unsolicited packets to the router and to the LAN vanish.
		input = append(input, rule(iifname("wan"), drop))
	case NATReject:
		// Unsolicited TCP is answered with a RST, by the firewall, in
		// input (IPv4: the NAT's own address) and forward (IPv6: a LAN
		// host's address). Other protocols are dropped.
		input = append(input,
			rule(iifname("wan"), l4proto(unix.IPPROTO_TCP), rejectTCPReset()),
			rule(iifname("wan"), drop))
		forward = append(forward,
			rule(iifname("wan"), nfprotoIPv6(), l4proto(unix.IPPROTO_TCP), rejectTCPReset()))
	case NATOpen:
		// No input filter: the router's own stack answers with RST. IPv6
		// is forwarded unfiltered, so the LAN host's stack answers.
		forward = append(forward, rule(iifname("wan"), nfprotoIPv6(), accept))
	}
	icmp := []nftRule{
		rule(l4proto(unix.IPPROTO_ICMP), accept),
		rule(l4proto(unix.IPPROTO_ICMPV6), accept),
	}
	filter := nftTable{family: nftables.TableFamilyINet, name: "lab", chains: []nftChain{
		{
			name: "input", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookInput,
			prio: nftables.ChainPriorityFilter, policy: nftables.ChainPolicyAccept,
			rules: append(append([]nftRule{
				rule(ctEstablished(), accept),
				rule(iifLo(), accept),
				rule(iifname("lan"), accept),
			}, icmp...), input...),
		},
		{
			name: "forward", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookForward,
			prio: nftables.ChainPriorityFilter, policy: nftables.ChainPolicyDrop,
			rules: append(append([]nftRule{
				rule(ctEstablished(), accept),
				rule(iifname("lan"), oifname("wan"), accept),
			}, icmp...), forward...),
		},
	}}
	// A symmetric NAT: a new random source port for every connection,
	// hence for every destination (iptables spells fully-random
	// random-fully; `random` is its --random).
	nat := nftTable{family: nftables.TableFamilyIPv4, name: "nat", chains: []nftChain{{
		name: "postrouting", typ: nftables.ChainTypeNAT, hook: nftables.ChainHookPostrouting,
		prio: nftables.ChainPriorityNATSource, policy: nftables.ChainPolicyAccept,
		rules: []nftRule{rule(oifname("wan"), masquerade(kind))},
	}}}
	return []nftTable{filter, nat}
}
