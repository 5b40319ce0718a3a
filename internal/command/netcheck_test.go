package command

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/netcheck"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// TestWriteReportSymmetric: the text lists every destination of the
// mapping test, the first too (the deltas are relative to it), and the
// time taken in a unit that does not round a fast check to zero.
func TestWriteReportSymmetric(t *testing.T) {
	ap := netip.MustParseAddrPort
	f := netcheck.Family{
		Network: "ipv4", Tested: true, Server: ap("203.0.113.2:3478"),
		Local: ap("10.0.1.10:40000"), Observed: ap("203.0.113.10:51000"), RTT: 600 * time.Microsecond,
		BehindNAT: netcheck.Bool{Answer: netcheck.Yes, Why: "the server saw 203.0.113.10:51000 for local 10.0.1.10:40000"},
		Mapping: netcheck.MappingResult{Class: rendezvous.MappingAddressPortDependent, Why: "every destination got its own mapping",
			Observations: []netcheck.Observation{
				{To: ap("203.0.113.2:3478"), Mapped: ap("203.0.113.10:51000")},
				{To: ap("203.0.113.250:3478"), Mapped: ap("203.0.113.10:52000"), PortDelta: 1000},
				{To: ap("203.0.113.250:3479"), Mapped: ap("203.0.113.10:50000"), PortDelta: -1000},
			}},
		PortPreserved: netcheck.Bool{Answer: netcheck.No, Why: "local port 40000 became 51000"},
		Filtering:     netcheck.FilteringResult{Class: rendezvous.FilteringSilent, Why: "a SYN from 203.0.113.250 (never contacted) got no answer"},
		Hairpin:       netcheck.Bool{Answer: netcheck.No, Why: "refused"},
	}
	r := &netcheck.Report{Server: "203.0.113.2:3478", IPv4: f, IPv6: netcheck.Family{Network: "ipv6", Why: "no ipv6 address"}, Elapsed: 12345 * time.Microsecond}
	r.Advice = netcheck.Advise(r)
	var b bytes.Buffer
	writeReport(&b, r)
	out := b.String()
	for _, want := range []string{
		"netcheck against 203.0.113.2:3478 (took 12ms)\n",
		"203.0.113.2:3478 saw 203.0.113.10:51000 (first)\n",
		"203.0.113.250:3478 saw 203.0.113.10:52000 (port delta +1000)\n",
		"203.0.113.250:3479 saw 203.0.113.10:50000 (port delta -1000)\n",
		"ipv6: not measured (no ipv6 address)\n",
		"advice: your NAT is symmetric",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(strings.TrimRight(out, "\n"), r.Advice) || strings.Count(out, "advice:") != 1 {
		t.Errorf("the report does not end in its one line of advice:\n%s", out)
	}
}
