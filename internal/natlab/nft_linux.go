//go:build linux

package natlab

// nftables rules built in Go and installed over netlink (no nft binary).
// Every rule is written as pieces that carry both the nft syntax and the
// kernel expressions for it, so the text the lab reports in errors, and
// that tests compare with `nft list ruleset`, is built from the same
// source as what it installs.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// piece is one part of a rule: a match, or a statement.
type piece struct {
	text  string
	exprs []expr.Any
}

// nftRule is a rule in text and in expressions.
type nftRule struct {
	text  string
	exprs []expr.Any
}

func rule(ps ...piece) nftRule {
	var r nftRule
	var words []string
	for _, p := range ps {
		words = append(words, p.text)
		r.exprs = append(r.exprs, p.exprs...)
	}
	r.text = strings.Join(words, " ")
	return r
}

type nftChain struct {
	name   string
	typ    nftables.ChainType
	hook   *nftables.ChainHook
	prio   *nftables.ChainPriority
	policy nftables.ChainPolicy
	rules  []nftRule
}

type nftTable struct {
	family nftables.TableFamily
	name   string
	chains []nftChain
}

var familyNames = map[nftables.TableFamily]string{
	nftables.TableFamilyINet: "inet",
	nftables.TableFamilyIPv4: "ip",
	nftables.TableFamilyIPv6: "ip6",
}

func (t nftTable) String() string { return fmt.Sprintf("table %s %s", familyNames[t.family], t.name) }

// header is the chain's base-chain line as `nft list` prints it.
func (c nftChain) header() string {
	hooks := map[nftables.ChainHook]string{
		*nftables.ChainHookPrerouting: "prerouting", *nftables.ChainHookInput: "input",
		*nftables.ChainHookForward: "forward", *nftables.ChainHookOutput: "output",
		*nftables.ChainHookPostrouting: "postrouting",
	}
	prios := map[nftables.ChainPriority]string{
		*nftables.ChainPriorityRaw: "raw", *nftables.ChainPriorityFilter: "filter",
		*nftables.ChainPriorityNATSource: "srcnat", *nftables.ChainPriorityNATDest: "dstnat",
	}
	policy := "accept"
	if c.policy == nftables.ChainPolicyDrop {
		policy = "drop"
	}
	return fmt.Sprintf("type %s hook %s priority %s; policy %s;", c.typ, hooks[*c.hook], prios[*c.prio], policy)
}

// rulesetText renders tables as `nft list ruleset` does (but without the
// blank line nft puts between chains).
func rulesetText(tables []nftTable) string {
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "%s {\n", t)
		for _, c := range t.chains {
			fmt.Fprintf(&b, "\tchain %s {\n", c.name)
			if c.hook != nil {
				fmt.Fprintf(&b, "\t\t%s\n", c.header())
			}
			for _, r := range c.rules {
				fmt.Fprintf(&b, "\t\t%s\n", r.text)
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// nftConn is an nftables netlink connection bound to the namespace ns
// (its socket is opened there, so no thread changes namespace). Close it
// with CloseLasting.
func nftConn(ns, what string) (*nftables.Conn, error) {
	f, err := os.Open(nsPath(ns))
	if err != nil {
		return nil, fmt.Errorf("natlab: %s: opening namespace: %w", what, err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("natlab: %s: nftables netlink: %w", what, err)
	}
	return c, nil
}

// installTables creates tables in the namespace ns, one netlink
// transaction for the tables and chains and one per rule, so that a
// failure names the rule the kernel refused (its errors say only EINVAL or
// ENOENT). what names the node in errors.
func installTables(ns, what string, tables []nftTable) error {
	c, err := nftConn(ns, what)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	type built struct {
		table *nftables.Table
		chain *nftables.Chain
		t     nftTable
		c     nftChain
	}
	var chains []built
	for _, t := range tables {
		tab := c.AddTable(&nftables.Table{Family: t.family, Name: t.name})
		for _, ch := range t.chains {
			nc := &nftables.Chain{Name: ch.name, Table: tab}
			if ch.hook != nil {
				pol := ch.policy
				nc.Type, nc.Hooknum, nc.Priority, nc.Policy = ch.typ, ch.hook, ch.prio, &pol
			}
			chains = append(chains, built{tab, c.AddChain(nc), t, ch})
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("natlab: %s: creating %s and its chains: %w", what, t, err)
		}
	}
	for _, b := range chains {
		for _, r := range b.c.rules {
			c.AddRule(&nftables.Rule{Table: b.table, Chain: b.chain, Exprs: r.exprs})
			if err := c.Flush(); err != nil {
				return fmt.Errorf("natlab: %s: rule %q in %s chain %s: %w", what, r.text, b.t, b.c.name, err)
			}
		}
	}
	return nil
}

// Verdicts.
var (
	accept = piece{"accept", []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}}
	drop   = piece{"drop", []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}}
	ret    = piece{"return", []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}}
)

func jump(chain string) piece {
	return piece{"jump " + chain, []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}

// ctEstablished is `ct state established,related`.
func ctEstablished() piece {
	bits := make([]byte, 4)
	binary.NativeEndian.PutUint32(bits, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return piece{"ct state established,related", []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: bits, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}}
}

// iifLo is `iif "lo"`: loopback is interface 1 in every namespace.
func iifLo() piece {
	idx := make([]byte, 4)
	binary.NativeEndian.PutUint32(idx, 1)
	return piece{`iif "lo"`, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIF, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: idx},
	}}
}

func ifname(key expr.MetaKey, word, name string) piece {
	data := make([]byte, unix.IFNAMSIZ) // as nft pads it: NUL to the full size
	copy(data, name)
	return piece{fmt.Sprintf("%s %q", word, name), []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}}
}

func iifname(name string) piece { return ifname(expr.MetaKeyIIFNAME, "iifname", name) }
func oifname(name string) piece { return ifname(expr.MetaKeyOIFNAME, "oifname", name) }

var protoNames = map[byte]string{unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_ICMPV6: "ipv6-icmp"}

// l4proto is `meta l4proto P`.
func l4proto(p byte) piece {
	return piece{"meta l4proto " + protoNames[p], []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}}
}

// nfprotoIPv6 is `meta nfproto ipv6` (an inet table sees both families).
func nfprotoIPv6() piece {
	return piece{"meta nfproto ipv6", []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}}
}

// rejectTCPReset is `reject with tcp reset`; it needs `meta l4proto tcp`
// before it.
func rejectTCPReset() piece {
	return piece{"reject with tcp reset", []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}}
}

// masquerade is `masquerade`, `masquerade random` or `masquerade
// fully-random`, as kind asks.
func masquerade(kind NATKind) piece {
	switch kind {
	case NATSymmetric:
		return piece{"masquerade fully-random", []expr.Any{&expr.Masq{FullyRandom: true}}}
	case NATSymmetricRandom:
		return piece{"masquerade random", []expr.Any{&expr.Masq{Random: true}}}
	}
	return piece{"masquerade", []expr.Any{&expr.Masq{}}}
}

// daddr is `ip daddr P` or `ip6 daddr P`, in a table of that family.
func daddr(p netip.Prefix) piece {
	p = p.Masked()
	word, off := "ip", uint32(16) // offsetof(struct iphdr, daddr)
	if p.Addr().Is6() {
		word, off = "ip6", 24 // offsetof(struct ipv6hdr, daddr)
	}
	addr := p.Addr().AsSlice()
	mask := netipMask(p)
	return piece{fmt.Sprintf("%s daddr %s", word, p), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)), Mask: mask, Xor: make([]byte, len(addr))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr},
	}}
}

func netipMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// icmpv6Type is `icmpv6 type T` (with its `meta l4proto ipv6-icmp`).
func icmpv6Type(typ byte, name string) piece {
	return piece{"meta l4proto ipv6-icmp icmpv6 type " + name, append(l4proto(unix.IPPROTO_ICMPV6).exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	)}
}

// queueTo diverts packets to queue num with the xtables NFQUEUE target
// through nft_compat, which iptables-nft uses too: this kernel has the
// target but not nft's own queue expression. Revision 3 of the target's
// info is struct xt_NFQ_info_v3 {u16 queuenum, queues_total, flags},
// in host byte order, padded to 8 bytes as x_tables aligns it. No flags:
// no bypass, so with the stage gone the kernel drops (fails closed).
func queueTo(num uint16) piece {
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1) // queues_total
	u := xt.Unknown(info)
	return piece{fmt.Sprintf("xt target NFQUEUE queue-num %d", num), []expr.Any{
		&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &u},
	}}
}
