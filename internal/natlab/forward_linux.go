//go:build linux

package natlab

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ForwardTCP makes the router forward TCP connections that arrive on its
// WAN address at port to the LAN address to (a port forward, DNAT, as a
// home router's "virtual server" setting does). The source address is
// kept, so the LAN host sees the real client. It is IPv4 only: IPv6 is
// routed, not translated, and its firewall is the router kind's.
//
// Connections the router itself sees as replies are unaffected; a
// forwarded connection is accepted by the firewall whatever the router's
// kind (`ct status dnat accept` at the top of its forward chain). If one
// port is forwarded twice, the first forward stays in charge.
func (r *Router) ForwardTCP(port uint16, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	switch {
	case port == 0 || to.Port() == 0:
		return fmt.Errorf("natlab: router %s: forward of port %d to %v: ports must be non-zero", r.name, port, to)
	case !to.Addr().Is4() || !r.lan4.Contains(to.Addr()):
		return fmt.Errorf("natlab: router %s: forward of port %d to %v: the target must be on the router's LAN %v", r.name, port, to, r.lan4)
	}
	l := r.lab
	l.mu.Lock()
	defer l.mu.Unlock() // also orders concurrent forwards on one router
	if l.closed {
		return ErrClosed
	}
	what := "router " + r.name
	c, err := nftConn(r.ns, what)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	if !r.forwarding {
		// The forward chain drops what is not a reply or LAN→WAN; accept
		// what a DNAT rule let in, before anything else decides.
		filter := &nftables.Table{Family: nftables.TableFamilyINet, Name: "lab"}
		ar := rule(ctStatusDNAT(), accept)
		c.InsertRule(&nftables.Rule{Table: filter, Chain: &nftables.Chain{Name: "forward", Table: filter}, Exprs: ar.exprs})
		if err := c.Flush(); err != nil {
			return fmt.Errorf("natlab: %s: inserting rule %q in %s chain forward: %w", what, ar.text, nftTable{family: filter.Family, name: filter.Name}, err)
		}
		t := forwardTable(nil)
		tab := c.AddTable(&nftables.Table{Family: t.family, Name: t.name})
		ch := t.chains[0]
		pol := ch.policy
		c.AddChain(&nftables.Chain{Name: ch.name, Table: tab, Type: ch.typ, Hooknum: ch.hook, Priority: ch.prio, Policy: &pol})
		if err := c.Flush(); err != nil {
			return fmt.Errorf("natlab: %s: creating %s and its chain %s: %w", what, t, ch.name, err)
		}
		r.forwarding = true
	}
	t := forwardTable([]nftRule{dnatRule(port, to)})
	tab := &nftables.Table{Family: t.family, Name: t.name}
	fr := t.chains[0].rules[0]
	c.AddRule(&nftables.Rule{Table: tab, Chain: &nftables.Chain{Name: t.chains[0].name, Table: tab}, Exprs: fr.exprs})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("natlab: %s: rule %q in %s chain %s: %w", what, fr.text, t, t.chains[0].name, err)
	}
	l.cfg.logger.Debug("natlab: port forward", "router", r.name, "port", port, "to", to)
	return nil
}

// forwardTable is the router's port-forward table with the given rules.
func forwardTable(rules []nftRule) nftTable {
	return nftTable{family: nftables.TableFamilyIPv4, name: "labfwd", chains: []nftChain{{
		name: "prerouting", typ: nftables.ChainTypeNAT, hook: nftables.ChainHookPrerouting,
		prio: nftables.ChainPriorityNATDest, policy: nftables.ChainPolicyAccept,
		rules: rules,
	}}}
}

// dnatRule is `iifname "wan" tcp dport P dnat to A:Q`.
func dnatRule(port uint16, to netip.AddrPort) nftRule {
	return rule(iifname("wan"), tcpDport(port), dnatTo(to))
}

// tcpDport is `tcp dport P` (with its implied `meta l4proto tcp`).
func tcpDport(port uint16) piece {
	return piece{fmt.Sprintf("tcp dport %d", port), append(l4proto(unix.IPPROTO_TCP).exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	)}
}

// dnatTo is `dnat to A:P` in an ip table.
func dnatTo(to netip.AddrPort) piece {
	a := to.Addr().As4()
	return piece{fmt.Sprintf("dnat to %v", to), []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, to.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
	}}
}

// ctStatusDNAT is `ct status dnat`.
func ctStatusDNAT() piece {
	bits := make([]byte, 4)
	binary.NativeEndian.PutUint32(bits, ipsDstNAT)
	return piece{"ct status dnat", []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: bits, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}}
}

// ipsDstNAT is IPS_DST_NAT of linux/netfilter/nf_conntrack_common.h: the
// connection's destination was translated.
const ipsDstNAT = 1 << 5
