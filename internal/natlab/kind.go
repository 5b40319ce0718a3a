package natlab

import (
	"fmt"
	"strings"
)

// NATKind is how a router treats traffic: its NAT mapping and what it does
// with unsolicited inbound packets. The IPv6 side of a router is never
// translated; its stateful firewall mirrors the kind (see each constant).
type NATKind uint8

const (
	// NATNone is no NAT at all: a host directly on the internet bridge. It
	// is only meaningful in a [Scenario]; routers always have another kind.
	NATNone NATKind = iota
	// NATDrop is a typical home router: endpoint-independent masquerade,
	// forward policy drop except established/related and LAN→WAN, and
	// unsolicited packets to the router itself dropped silently in input.
	// IPv6: the same forward policy, no translation.
	NATDrop
	// NATReject answers unsolicited inbound TCP with a RST (`reject with tcp
	// reset` in input; IPv6: in forward). Sending the RST deletes the
	// router's own conntrack entry, so punching only works while both SYNs
	// are in flight together.
	NATReject
	// NATOpen has no input filter: the router's own TCP stack answers
	// unsolicited SYNs with a RST. IPv6: forwarded unfiltered, so the peer's
	// stack answers.
	NATOpen
	// NATSymmetric maps every new destination to a random port (masquerade
	// fully-random) and filters like NATDrop. Direct punching is not
	// expected to work through it.
	NATSymmetric
	// NATSymmetricRandom is `masquerade random` (NF_NAT_RANGE_PROTO_RANDOM,
	// iptables' --random, as opposed to fully-random): the source port of
	// every new mapping is randomised. On this kernel that is a fresh
	// random port per connection, as with fully-random: netcheck sees
	// every destination (other address; other port of one address) get
	// its own port, spread over the whole range, never the local port:
	// address-and-port-dependent. Filters like NATDrop.
	NATSymmetricRandom
)

var kindNames = [...]string{
	NATNone:            "none",
	NATDrop:            "drop",
	NATReject:          "rst",
	NATOpen:            "open",
	NATSymmetric:       "symmetric",
	NATSymmetricRandom: "symmetric-random",
}

// String returns the short name used in scenario names and on the command
// line: none, drop, rst, open, symmetric, symmetric-random.
func (k NATKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("NATKind(%d)", uint8(k))
}

// ParseNATKind is the inverse of [NATKind.String]; it also accepts
// "reject" for rst, "public" for none and "sym" for symmetric and "random" for symmetric-random.
func ParseNATKind(s string) (NATKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "public":
		return NATNone, nil
	case "drop":
		return NATDrop, nil
	case "rst", "reject":
		return NATReject, nil
	case "open":
		return NATOpen, nil
	case "symmetric", "sym":
		return NATSymmetric, nil
	case "symmetric-random", "random":
		return NATSymmetricRandom, nil
	}
	return 0, fmt.Errorf("natlab: unknown NAT kind %q (want none, drop, rst, open, symmetric or symmetric-random)", s)
}
