//go:build linux

package natlab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Links, addresses and routes, over rtnetlink handles bound to a namespace
// (see handle). Errors say what was being done in iproute2 terms, which is
// how people debugging the lab think of it.

// addBridge creates bridge name with the given addresses and brings it up.
// STP is off (the kernel default), so ports forward at once; multicast
// snooping is off so IPv6 neighbour discovery always floods.
func addBridge(h *netlink.Handle, ns, name string, addrs ...netip.Prefix) error {
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("natlab: %s: link add %s type bridge: %w", ns, name, err)
	}
	if err := addAddrs(h, ns, name, addrs...); err != nil {
		return err
	}
	return nil
}

// addVeth creates a veth pair: port, enslaved to bridge in the namespace
// of h (ns), and peer inside the namespace peerNS. Both come up; the
// peer's addresses are the caller's job.
func addVeth(h *netlink.Handle, ns, bridge, port, peerNS, peer string) error {
	br, err := h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("natlab: %s: finding bridge %s: %w", ns, bridge, err)
	}
	target, err := openNS(peerNS)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(target),
	}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("natlab: %s: link add %s master %s type veth peer name %s netns %s: %w", ns, port, bridge, peer, peerNS, err)
	}
	if err := h.LinkSetUp(v); err != nil {
		return fmt.Errorf("natlab: %s: link set %s up: %w", ns, port, err)
	}
	return nil
}

func openNS(ns string) (int, error) {
	fd, err := unix.Open(nsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("natlab: opening namespace %s: %w", ns, err)
	}
	return fd, nil
}

// addAddrs adds addresses to the link dev and brings it up. IPv6
// addresses skip duplicate address detection (nodad): the lab allocates
// them, and DAD would keep each unusable for a second.
func addAddrs(h *netlink.Handle, ns, dev string, addrs ...netip.Prefix) error {
	link, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("natlab: %s: finding link %s: %w", ns, dev, err)
	}
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, na); err != nil {
			return fmt.Errorf("natlab: %s: addr add %s dev %s: %w", ns, a, dev, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("natlab: %s: link set %s up: %w", ns, dev, err)
	}
	return nil
}

// addRoute adds a route to dst (the zero Prefix: the default route of
// via's family) through the gateway via.
func addRoute(h *netlink.Handle, ns string, dst netip.Prefix, via netip.Addr) error {
	r := &netlink.Route{Gw: net.IP(via.AsSlice())}
	what := "default"
	if dst.IsValid() {
		r.Dst, what = ipNet(dst.Masked()), dst.String()
	} else {
		bits := via.BitLen()
		r.Dst = &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)}
	}
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("natlab: %s: route add %s via %s: %w", ns, what, via, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
