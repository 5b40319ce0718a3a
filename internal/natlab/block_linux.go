//go:build linux

package natlab

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
)

// BlockTo makes the router drop every packet it would forward to dst (an
// IPv4 address), as a firewall on the path would: `ip daddr dst drop` in
// a forward chain of its own table, ahead of the NAT's filter. It is what
// lets a test start a pair with no direct path and give it one later:
// unblock removes the rule (the table), and the router forwards as before.
// A dropped packet never confirms a conntrack entry, so nothing of the
// blocked time lingers in the router's state.
func (r *Router) BlockTo(dst netip.Addr) (unblock func() error, err error) {
	dst = dst.Unmap()
	if !dst.Is4() {
		return nil, fmt.Errorf("natlab: router %s: block to %v: IPv4 only", r.name, dst)
	}
	return r.block(blockTable(dst, 0), dst.String())
}

// BlockToPort is BlockTo for TCP to one port of dst only (`ip daddr A tcp
// dport P drop`): a test can make one 4-tuple's punch fail for good and
// leave every other port open. Blocks of different ports stand side by
// side; each unblock removes its own.
func (r *Router) BlockToPort(dst netip.AddrPort) (unblock func() error, err error) {
	a := dst.Addr().Unmap()
	if !a.Is4() || dst.Port() == 0 {
		return nil, fmt.Errorf("natlab: router %s: block to %v: an IPv4 address and a port", r.name, dst)
	}
	return r.block(blockTable(a, dst.Port()), netip.AddrPortFrom(a, dst.Port()).String())
}

func (r *Router) block(t nftTable, to string) (unblock func() error, err error) {
	l := r.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	what := "router " + r.name
	if err := installTables(r.ns, what, []nftTable{t}); err != nil {
		return nil, err
	}
	l.cfg.logger.Debug("natlab: blocking", "router", r.name, "to", to)
	return func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			return ErrClosed
		}
		c, err := nftConn(r.ns, what)
		if err != nil {
			return err
		}
		defer c.CloseLasting()
		c.DelTable(&nftables.Table{Family: t.family, Name: t.name})
		if err := c.Flush(); err != nil {
			return fmt.Errorf("natlab: %s: deleting %s: %w", what, t, err)
		}
		l.cfg.logger.Debug("natlab: unblocked", "router", r.name, "to", to)
		return nil
	}, nil
}

// blockTable is BlockTo's table (port 0) or BlockToPort's: one forward
// chain, before the NAT kind's filter (priority filter - 10), with the one
// drop rule. A port's table is named after it, so blocks stand side by
// side.
func blockTable(dst netip.Addr, port uint16) nftTable {
	name, match := "labblock", []piece{daddr(netip.PrefixFrom(dst, 32))}
	if port != 0 {
		name = fmt.Sprintf("labblock_%s_%d", strings.ReplaceAll(dst.String(), ".", "_"), port)
		match = append(match, tcpDport(port))
	}
	return nftTable{family: nftables.TableFamilyIPv4, name: name, chains: []nftChain{{
		name: "forward", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookForward,
		prio: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 10), policy: nftables.ChainPolicyAccept,
		rules: []nftRule{rule(append(match, drop)...)},
	}}}
}
