//go:build linux

package natlab

import (
	"fmt"
	"net/netip"
)

// AddAddr adds a to the node's access link (Link), beside the address the
// lab gave it: a server with a second address, for instance. The lab does
// not allocate a: pick one outside what it hands out (the internet
// segment's hosts start at .2 and count up). IPv6 addresses skip duplicate
// address detection, like the lab's own.
func (n *node) AddAddr(a netip.Prefix) error {
	if !a.IsValid() {
		return fmt.Errorf("natlab: %s: AddAddr needs an address with a prefix length", n.name)
	}
	h, err := handle(n.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return addAddrs(h, n.ns, n.link, a)
}
