//go:build linux

package natlab

import (
	"fmt"
	"net/netip"

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
	l := r.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	what := "router " + r.name
	t := blockTable(dst)
	if err := installTables(r.ns, what, []nftTable{t}); err != nil {
		return nil, err
	}
	l.cfg.logger.Debug("natlab: blocking", "router", r.name, "to", dst)
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
		l.cfg.logger.Debug("natlab: unblocked", "router", r.name, "to", dst)
		return nil
	}, nil
}

// blockTable is BlockTo's table: one forward chain, before the NAT
// kind's filter (priority filter - 10), with the one drop rule.
func blockTable(dst netip.Addr) nftTable {
	return nftTable{family: nftables.TableFamilyIPv4, name: "labblock", chains: []nftChain{{
		name: "forward", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookForward,
		prio: nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 10), policy: nftables.ChainPolicyAccept,
		rules: []nftRule{rule(daddr(netip.PrefixFrom(dst, 32)), drop)},
	}}}
}
