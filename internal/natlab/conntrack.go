package natlab

import (
	"fmt"
	"net/netip"
)

// Flow is one entry of a node's connection-tracking table, as
// `conntrack -L` lists it: the connection as its first packet saw it
// (Orig) and as the replies are expected (Reply). Where the two differ the
// node translates: for a masqueraded connection Reply.Dst is the router's
// public address and port, for a port forward Reply.Src is the LAN host.
type Flow struct {
	Proto string // "tcp", "udp", "icmp", ... or the protocol number
	// State is the TCP state as conntrack names it (SYN_SENT, SYN_SENT2,
	// SYN_RECV, ESTABLISHED, ...); empty for other protocols.
	State string
	Orig  FlowTuple
	Reply FlowTuple
}

// FlowTuple is one direction of a [Flow]. Ports are zero for protocols
// without them.
type FlowTuple struct {
	Src, Dst netip.AddrPort
}

func (f Flow) String() string {
	s := f.Proto
	if f.State != "" {
		s += " " + f.State
	}
	return fmt.Sprintf("%s %v -> %v reply %v -> %v", s, f.Orig.Src, f.Orig.Dst, f.Reply.Src, f.Reply.Dst)
}
