package netcheck_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/netcheck"
	"github.com/tcpunch/tcpunch/rendezvous"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// serve runs a real server on 127.0.0.1, with 127.0.0.2 as its alternate
// address when alt is set.
func serve(t *testing.T, alt bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []rendezvous.ServerOption
	if alt {
		opts = append(opts, rendezvous.WithAltAddr(netip.MustParseAddrPort("127.0.0.2:0")))
	}
	srv := rendezvous.NewServer(opts...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func run(t *testing.T, server string) *netcheck.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := netcheck.Run(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLoopbackWithAltAddr: on loopback there is no NAT, and the dial-back
// from the alternate address reaches our listener.
func TestLoopbackWithAltAddr(t *testing.T) {
	r := run(t, serve(t, true))
	f := r.IPv4
	if !f.Tested || f.BehindNAT.Answer != netcheck.No || f.Mapping.Class != rendezvous.MappingNone ||
		f.Filtering.Class != rendezvous.FilteringAccepted || f.Hairpin.Answer != netcheck.NotMeasured ||
		f.PortPreserved.Answer != netcheck.Yes {
		t.Errorf("IPv4 report: %+v", f)
	}
	if f.RTT <= 0 || f.RTT > time.Second {
		t.Errorf("RTT %v", f.RTT)
	}
	if r.IPv6.Tested || r.IPv6.Why == "" {
		t.Errorf("an IPv4 server address must leave IPv6 not measured, with why: %+v", r.IPv6)
	}
	if !strings.Contains(r.Advice, "any peer") {
		t.Errorf("advice %q", r.Advice)
	}
}

// TestSingleAddressServer: without a second address, the filtering is not
// measured (never a guess), and says why.
func TestSingleAddressServer(t *testing.T) {
	f := run(t, serve(t, false)).IPv4
	if !f.Tested || f.Filtering.Class != rendezvous.FilteringNotMeasured || !strings.Contains(f.Filtering.Why, "--alt-addr") {
		t.Errorf("filtering %+v, want not measured because of the missing --alt-addr", f.Filtering)
	}
	if len(f.Mapping.Observations) != 1 {
		t.Errorf("observations %v: a single-address server gives one", f.Mapping.Observations)
	}
}

func TestUnreachableServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := run(t, addr)
	if r.IPv4.Tested || !strings.Contains(r.IPv4.Why, "cannot reach") || r.IPv4.Mapping.Class != rendezvous.MappingNotMeasured {
		t.Errorf("unreachable server: %+v", r.IPv4)
	}
}

// TestReportJSONGolden pins the JSON shape of a report.
func TestReportJSONGolden(t *testing.T) {
	ap := netip.MustParseAddrPort
	r := netcheck.Report{
		Server:  "203.0.113.2:3478",
		Elapsed: 2150 * time.Millisecond,
		IPv4: netcheck.Family{
			Network: "ipv4", Tested: true,
			Server: ap("203.0.113.2:3478"), Local: ap("10.0.1.2:40000"), Observed: ap("203.0.113.3:40000"),
			RTT:       1500 * time.Microsecond,
			BehindNAT: netcheck.Bool{Answer: netcheck.Yes, Why: "the server saw 203.0.113.3:40000 for local 10.0.1.2:40000"},
			Mapping: netcheck.MappingResult{Class: rendezvous.MappingEndpointIndependent, Why: "one mapping 203.0.113.3:40000 for 3 destinations",
				Observations: []netcheck.Observation{
					{To: ap("203.0.113.2:3478"), Mapped: ap("203.0.113.3:40000")},
					{To: ap("203.0.113.250:3478"), Mapped: ap("203.0.113.3:40000")},
					{To: ap("203.0.113.250:3479"), Mapped: ap("203.0.113.3:40000")},
				}},
			PortPreserved: netcheck.Bool{Answer: netcheck.Yes, Why: "local port 40000 kept"},
			Filtering:     netcheck.FilteringResult{Class: rendezvous.FilteringSilent, Why: "a SYN from 203.0.113.250 (never contacted) got no answer"},
			Hairpin:       netcheck.Bool{Answer: netcheck.No, Why: "a connection to our own public endpoint 203.0.113.3:40000 was refused (RST)"},
		},
		IPv6: netcheck.Family{Network: "ipv6", Why: "the server address 203.0.113.2 has no ipv6 address",
			Mapping: netcheck.MappingResult{Observations: []netcheck.Observation{}}},
	}
	r.Advice = netcheck.Advise(&r)
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report JSON changed shape:\n%s\nwant:\n%s", got, want)
	}
}

// TestAdviseNotMeasuredHint: without a mapping measurement the advice says
// so, and adds port preservation as a hint, never as the class.
func TestAdviseNotMeasuredHint(t *testing.T) {
	for _, c := range []struct {
		preserved netcheck.Answer
		want      string
	}{
		{netcheck.No, "hint: the NAT changed our port, which symmetric NATs do"},
		{netcheck.Yes, "hint: the NAT kept our port"},
	} {
		r := &netcheck.Report{IPv4: netcheck.Family{Network: "ipv4", Tested: true,
			BehindNAT:     netcheck.Bool{Answer: netcheck.Yes},
			PortPreserved: netcheck.Bool{Answer: c.preserved},
			Mapping:       netcheck.MappingResult{Why: "the server has no second address"},
		}}
		got := netcheck.Advise(r)
		if !strings.HasPrefix(got, "the NAT mapping was not measured (the server has no second address)") || !strings.Contains(got, c.want) {
			t.Errorf("port preserved %v: advice %q, want it to say not measured and %q", c.preserved, got, c.want)
		}
	}
}

// TestAdviseNoNATUnmeasuredFiltering: with no NAT and no filtering
// measurement the advice claims no firewall; a measured silent filter is
// named as one.
func TestAdviseNoNATUnmeasuredFiltering(t *testing.T) {
	advise := func(f rendezvous.Filtering) string {
		return netcheck.Advise(&netcheck.Report{IPv4: netcheck.Family{Network: "ipv4", Tested: true,
			Mapping:   netcheck.MappingResult{Class: rendezvous.MappingNone},
			Filtering: netcheck.FilteringResult{Class: f},
		}})
	}
	if got := advise(rendezvous.FilteringNotMeasured); strings.Contains(got, "a firewall filters unsolicited") {
		t.Errorf("advice %q claims a firewall nobody measured", got)
	}
	if got := advise(rendezvous.FilteringSilent); !strings.Contains(got, "a firewall filters unsolicited") {
		t.Errorf("advice %q for a silent filter names no firewall", got)
	}
}
