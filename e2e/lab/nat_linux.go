//go:build linux

package lab

import (
	"fmt"
	"strings"
)

// natRuleset is the nftables ruleset of a router of the given kind. The
// WAN interface is "wan", the LAN bridge "lan".
//
// IPv4 is masqueraded; IPv6 is only routed, and filtered by the same kind
// (the common setup of a home router: a stateful firewall, no NAT66).
// ICMP and ICMPv6 are always accepted: IPv6 breaks without neighbour
// discovery, and the lab studies TCP, not ping.
func natRuleset(kind NATKind) string {
	var input, forward []string

	switch kind {
	case NATDrop, NATSymmetric:
		// Unsolicited packets to the router and to the LAN vanish.
		input = append(input, `iifname "wan" drop`)
	case NATReject:
		// Unsolicited TCP is answered with a RST, by the firewall, in
		// input (IPv4: the NAT's own address) and forward (IPv6: a LAN
		// host's address). Other protocols are dropped.
		input = append(input, `iifname "wan" meta l4proto tcp reject with tcp reset`, `iifname "wan" drop`)
		forward = append(forward, `iifname "wan" meta nfproto ipv6 meta l4proto tcp reject with tcp reset`)
	case NATOpen:
		// No input filter: the router's own stack answers with RST. IPv6
		// is forwarded unfiltered, so the LAN host's stack answers.
		forward = append(forward, `iifname "wan" meta nfproto ipv6 accept`)
	}

	masq := "masquerade"
	if kind == NATSymmetric {
		// A new random source port for every connection, hence for every
		// destination: a symmetric NAT. (iptables spells it random-fully.)
		masq = "masquerade fully-random"
	}

	var b strings.Builder
	fmt.Fprintf(&b, `table inet lab {
	chain input {
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		iif "lo" accept
		iifname "lan" accept
		meta l4proto { icmp, ipv6-icmp } accept
		%s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
		meta l4proto { icmp, ipv6-icmp } accept
		%s
	}
}
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" %s
	}
}
`, strings.Join(input, "\n\t\t"), strings.Join(forward, "\n\t\t"), masq)
	return b.String()
}
