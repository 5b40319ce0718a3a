package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tcpunch/tcpunch/netcheck"
)

// Netcheck runs the NAT behaviour check against server and prints the
// report: text ending in one line of advice, or JSON. Exit 4 when the
// server could not be reached over any family.
func Netcheck(ctx context.Context, server string, asJSON bool, timeout time.Duration, stdout io.Writer) error {
	if server == "" {
		return usageError("missing SERVER: give it as an argument, with --rendezvous or in TCPUNCH_RENDEZVOUS (a tcpunch server, best one with --alt-addr)")
	}
	r, err := netcheck.Run(ctx, server, netcheck.WithStepTimeout(timeout))
	if err != nil {
		return &Error{Code: ExitRendezvous, Err: err}
	}
	if asJSON {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeReport(stdout, r)
	}
	if !r.IPv4.Tested && !r.IPv6.Tested {
		return &Error{Code: ExitRendezvous, Err: fmt.Errorf("netcheck: %s could not be reached (ipv4: %s; ipv6: %s)", server, r.IPv4.Why, r.IPv6.Why)}
	}
	return nil
}

func writeReport(w io.Writer, r *netcheck.Report) {
	fmt.Fprintf(w, "netcheck against %s (took %v)\n", r.Server, r.Elapsed.Round(time.Millisecond))
	for _, f := range []netcheck.Family{r.IPv4, r.IPv6} {
		if !f.Tested {
			fmt.Fprintf(w, "%s: not measured (%s)\n", f.Network, f.Why)
			continue
		}
		fmt.Fprintf(w, "%s: local %v, public %v, rtt %.1f ms\n", f.Network, f.Local, f.Observed, float64(f.RTT.Microseconds())/1000)
		line := func(name, value, why string) { fmt.Fprintf(w, "  %-15s %s (%s)\n", name+":", value, why) }
		line("behind NAT", f.BehindNAT.Answer.String(), f.BehindNAT.Why)
		line("mapping", f.Mapping.Class.String(), f.Mapping.Why)
		// Every destination and what it saw, the first too: a symmetric
		// NAT's deltas are relative to it. One alone is the public line.
		for i, o := range f.Mapping.Observations {
			if len(f.Mapping.Observations) < 2 {
				break
			}
			delta := fmt.Sprintf("port delta %+d", o.PortDelta)
			if i == 0 {
				delta = "first"
			}
			fmt.Fprintf(w, "  %-15s %v saw %v (%s)\n", "", o.To, o.Mapped, delta)
		}
		line("port preserved", f.PortPreserved.Answer.String(), f.PortPreserved.Why)
		line("filtering", f.Filtering.Class.String(), f.Filtering.Why)
		line("hairpin", f.Hairpin.Answer.String(), f.Hairpin.Why)
	}
	fmt.Fprintf(w, "advice: %s\n", r.Advice)
}
