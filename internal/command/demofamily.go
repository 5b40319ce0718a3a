package command

import (
	"fmt"
	"os"
	"path/filepath"
)

// nsHost is the part of a lab host that ipv4Only needs.
type nsHost interface {
	Do(fn func() error) error // runs fn in the host's network namespace
	Link() string
	Namespace() string
}

// ipv4Only turns IPv6 off on a demo peer. The lab is dual-stack and IPv6
// is routed there, never translated: peers that advertise IPv6 LAN
// candidates meet over IPv6 through the routers' stateful firewalls
// whatever the IPv4 NATs do, and a scenario such as symmetric×drop would
// not show the NAT it is about. The e2e matrix does the same.
func ipv4Only(h nsHost) error {
	return h.Do(func() error {
		for _, dev := range []string{"all", "default", h.Link()} {
			p := filepath.Join("/proc/sys/net/ipv6/conf", dev, "disable_ipv6")
			if err := os.WriteFile(p, []byte("1"), 0); err != nil {
				return fmt.Errorf("disabling IPv6 in %s: %w", h.Namespace(), err)
			}
		}
		return nil
	})
}
