//go:build linux

package natlab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Conntrack lists the node's connection-tracking table, IPv4 and IPv6,
// over netlink (no conntrack binary). On a router it shows the NAT's
// mappings and what its firewall thinks of each connection; it is what
// the lab's tests log when a punch fails.
func (n *node) Conntrack() ([]Flow, error) {
	var h *netlink.Handle
	// The netfilter socket is opened on Do's thread, inside the
	// namespace, and works from any thread afterwards.
	if err := n.Do(func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
		return err
	}); err != nil {
		return nil, fmt.Errorf("natlab: %s: conntrack netlink: %w", n.name, err)
	}
	defer h.Close()
	var out []Flow
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("natlab: %s: conntrack -L -f %s: %w", n.name, famName(fam), err)
		}
		for _, f := range flows {
			out = append(out, flowOf(f))
		}
	}
	return out, nil
}

func famName(f netlink.InetFamily) string {
	if f == unix.AF_INET6 {
		return "ipv6"
	}
	return "ipv4"
}

// tcpStates are conntrack's TCP state names, by the number in
// CTA_PROTOINFO_TCP_STATE (enum tcp_conntrack).
var tcpStates = []string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

var protoName = map[uint8]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp",
	unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_ICMPV6: "icmpv6"}

func flowOf(f *netlink.ConntrackFlow) Flow {
	fl := Flow{Proto: protoName[f.Forward.Protocol],
		Orig:  tupleOf(f.Forward),
		Reply: tupleOf(f.Reverse),
	}
	if fl.Proto == "" {
		fl.Proto = strconv.Itoa(int(f.Forward.Protocol))
	}
	if p, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); ok {
		if int(p.State) < len(tcpStates) {
			fl.State = tcpStates[p.State]
		} else {
			fl.State = strconv.Itoa(int(p.State))
		}
	}
	return fl
}

func tupleOf(t netlink.IPTuple) FlowTuple {
	return FlowTuple{Src: addrPort(t.SrcIP, t.SrcPort), Dst: addrPort(t.DstIP, t.DstPort)}
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
