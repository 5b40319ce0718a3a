package ingress

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParsePrefixes parses a list of CIDR prefixes or single addresses (taken
// as /32 or /128), as given to --proxy-protocol-from. Entries may be
// separated by commas within one string.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if strings.Contains(s, "/") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return nil, fmt.Errorf("%q is not a CIDR prefix (like 10.0.0.0/8 or fd00::/8): %w", s, err)
				}
				if p.Addr().Is4In6() {
					p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
				}
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix: %w", s, err)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

func contains(set []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range set {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
