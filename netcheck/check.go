package netcheck

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Option configures [Run].
type Option func(*config)

type config struct {
	log     *slog.Logger
	timeout time.Duration
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithStepTimeout bounds each step (connecting, one Binding, the wait for
// a dial-back or a hairpin connection to arrive); default 3 s. A silent NAT
// costs the server's dial-back timeout (2 s by default) whatever this is.
func WithStepTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// Run checks the NAT behaviour towards the tcpunch server at server
// (HOST:PORT): over IPv4 and IPv6 at once when HOST is a name with both
// kinds of address, over one family when it is an IP address. It fails
// only for a server address it cannot parse or resolve at all; what could
// not be measured is in the report, with why.
func Run(ctx context.Context, server string, opts ...Option) (*Report, error) {
	cfg := config{log: slog.New(slog.DiscardHandler), timeout: 3 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	start := time.Now()
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("netcheck: server %q: %w", server, err)
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
	} else {
		rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("netcheck: resolving %s: %w", host, err)
		}
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, fmt.Errorf("netcheck: server %q: %w", server, err)
	}
	r := &Report{Server: server, IPv4: Family{Network: "ipv4"}, IPv6: Family{Network: "ipv6"}}
	var wg sync.WaitGroup
	for _, f := range []*Family{&r.IPv4, &r.IPv6} {
		var ap netip.AddrPort
		for _, a := range addrs {
			a = a.Unmap()
			if a.Is4() == (f.Network == "ipv4") {
				ap = netip.AddrPortFrom(a, uint16(pn))
				break
			}
		}
		if !ap.IsValid() {
			*f = notTested(f.Network, fmt.Sprintf("the server address %s has no %s address", host, f.Network))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			*f = checkFamily(ctx, cfg, f.Network, ap)
		}()
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	r.Advice = Advise(r)
	return r, nil
}

func notTested(network, why string) Family {
	return Family{Network: network, Why: why,
		BehindNAT:     Bool{Why: why},
		Mapping:       MappingResult{Why: why, Observations: []Observation{}},
		PortPreserved: Bool{Why: why},
		Filtering:     FilteringResult{Why: why},
		Hairpin:       Bool{Why: why},
	}
}
