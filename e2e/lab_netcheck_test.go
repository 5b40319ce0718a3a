//go:build linux

package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The rendezvous host's second address, added by the test over netlink:
// the lab allocates the internet segment upwards from .2, so .250 and ::fa
// are free.
var (
	altAddr4 = netip.MustParseAddr("203.0.113.250")
	altAddr6 = netip.MustParseAddr("2001:db8::fa")
)

// addAltAddrs gives the rendezvous host its second IPv4 and IPv6 address.
func addAltAddrs(t *testing.T, h *natlab.Host) {
	t.Helper()
	for _, a := range []netip.Prefix{netip.PrefixFrom(altAddr4, 24), netip.PrefixFrom(altAddr6, 64)} {
		if err := h.AddAddr(a); err != nil {
			t.Fatalf("adding %v to %s: %v", a, h.Name(), err)
		}
	}
}

// ncFamily is the part of netcheck's JSON a lab test checks.
type ncFamily struct {
	Tested  bool
	Why     string
	Mapping struct {
		Value, Why   string
		Observations []struct {
			To, Mapped string
			Delta      int `json:"port_delta"`
		}
	}
	Filtering struct{ Value, Why string }
	Hairpin   struct{ Value, Why string }
	Port      struct{ Value, Why string } `json:"port_preserved"`
	RTTms     float64                     `json:"rtt_ms"`
}

type ncReport struct {
	IPv4, IPv6 ncFamily
	Advice     string
	ElapsedMS  float64 `json:"elapsed_ms"`
}

// netcheckIn runs `tcpunch netcheck --json` in h's namespace.
func netcheckIn(t *testing.T, h *natlab.Host, server string) ncReport {
	t.Helper()
	var out syncBuffer
	p := start(t, in(h), nil, &out, "netcheck", "--json", server)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("tcpunch netcheck %s: exit %d; stderr:\n%s", server, code, p.stderr.String())
	}
	var r ncReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("netcheck's JSON: %v\n%s", err, out.String())
	}
	return r
}

// want is the ground truth of one family: what the lab's NAT rules imply.
type want struct{ mapping, port, filtering, hairpin string }

func (w want) check(t *testing.T, run int, family string, f ncFamily) {
	t.Helper()
	got := want{f.Mapping.Value, f.Port.Value, f.Filtering.Value, f.Hairpin.Value}
	if !f.Tested || got != w {
		t.Errorf("run %d %s: got mapping %q port-preserved %q filtering %q hairpin %q, want %+v (tested %v %s; mapping: %s; filtering: %s; hairpin: %s)",
			run, family, got.mapping, got.port, got.filtering, got.hairpin, w, f.Tested, f.Why, f.Mapping.Why, f.Filtering.Why, f.Hairpin.Why)
	}
}

// TestLabNetcheck: every lab NAT is classified as its rules say, 5 runs out
// of 5 (fresh local ports each), over IPv4 and, where the lab routes it,
// IPv6 (never translated; the router's firewall mirrors the kind).
func TestLabNetcheck(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	natted := func(mapping, port, filtering string) want { return want{mapping, port, filtering, "no"} }
	v6 := func(filtering string) *want { w := want{"none", "yes", filtering, "not measured"}; return &w }
	for _, c := range []struct {
		name string
		side natlab.Side
		same bool // a second peer behind the same NAT runs netcheck too
		v4   want
		v6   *want // nil: not checked
	}{
		{name: "drop", side: natlab.Side{NAT: natlab.NATDrop}, v4: natted("endpoint-independent", "yes", "silent"), v6: v6("silent")},
		{name: "rst", side: natlab.Side{NAT: natlab.NATReject}, v4: natted("endpoint-independent", "yes", "rst"), v6: v6("rst")},
		{name: "open", side: natlab.Side{NAT: natlab.NATOpen}, v4: natted("endpoint-independent", "yes", "rst"), v6: v6("accepted")},
		{name: "symmetric", side: natlab.Side{NAT: natlab.NATSymmetric}, v4: natted("address-and-port-dependent", "no", "silent"), v6: v6("silent")},
		{name: "symmetric-random", side: natlab.Side{NAT: natlab.NATSymmetricRandom}, v4: natted("address-and-port-dependent", "no", "silent"), v6: v6("silent")},
		{name: "double", side: natlab.Side{NAT: natlab.NATDrop, Carrier: natlab.NATDrop}, v4: natted("endpoint-independent", "yes", "silent"), v6: v6("silent")},
		{name: "same-nat", side: natlab.Side{NAT: natlab.NATDrop}, same: true, v4: natted("endpoint-independent", "yes", "silent"), v6: v6("silent")},
		{name: "public", side: natlab.Side{}, v4: want{"none", "yes", "accepted", "not measured"}, v6: v6("accepted")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 3*time.Minute)
			s := natlab.Scenario{Name: c.name, A: c.side, B: natlab.Side{NAT: natlab.NATDrop}, SameNAT: c.same && c.side.NAT != natlab.NATNone}
			p, err := s.Build(ctx)
			if err != nil {
				t.Fatal(err)
			}
			closeWithTest(t, p.Lab)
			rdv := p.Rendezvous()
			addAltAddrs(t, rdv)
			start(t, in(rdv), nil, nil, "serve", "--listen", fmt.Sprintf(":%d", rdvPort),
				"--alt-addr", altAddr4.String(), "--alt-addr", altAddr6.String()).waitStderr(`rendezvous serving.*addr=`+regexp.QuoteMeta("["+altAddr6.String()+"]"), 30*time.Second)
			srv4 := netip.AddrPortFrom(rdv.Addr(), rdvPort).String()
			srv6 := netip.AddrPortFrom(rdv.Addr6(), rdvPort).String()
			hosts := []*natlab.Host{p.A}
			if c.same {
				hosts = append(hosts, p.B)
			}
			for _, h := range hosts {
				for run := 1; run <= 5; run++ {
					r := netcheckIn(t, h, srv4)
					c.v4.check(t, run, h.Name()+" ipv4", r.IPv4)
					if run == 1 {
						t.Logf("%s ipv4: %.0f ms in all, rtt %.2f ms; advice: %s", h.Name(), r.ElapsedMS, r.IPv4.RTTms, r.Advice)
					}
					t.Logf("%s ipv4 run %d: mapping %s %+v", h.Name(), run, r.IPv4.Mapping.Value, r.IPv4.Mapping.Observations)
					if c.v6 != nil {
						r6 := netcheckIn(t, h, srv6)
						c.v6.check(t, run, h.Name()+" ipv6", r6.IPv6)
					}
				}
			}
		})
	}
}

// TestLabNetcheckSingleAddress: a server without --alt-addr yields
// "not measured" for the filtering and the mapping behind a NAT, never a
// wrong value.
func TestLabNetcheckSingleAddress(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	ctx := testContext(t, 2*time.Minute)
	p, err := natlab.Scenario{Name: "single", A: natlab.Side{NAT: natlab.NATSymmetric}, B: natlab.Side{NAT: natlab.NATDrop}}.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeWithTest(t, p.Lab)
	srv, _ := serve(t, in(p.Rendezvous()), netip.AddrPortFrom(p.Rendezvous().Addr(), rdvPort).String())
	f := netcheckIn(t, p.A, srv).IPv4
	if !f.Tested || f.Filtering.Value != "not measured" || f.Mapping.Value != "not measured" {
		t.Errorf("single-address server behind a symmetric NAT: mapping %q, filtering %q; want both not measured", f.Mapping.Value, f.Filtering.Value)
	}
}

// TestLabSymmetricPairGivesUpAtOnce: with a server that has a second
// address, both peers measure their symmetric NATs while connecting, and
// with --relay never dial says no direct path can exist right after the
// peer info instead of waiting out --timeout; -v shows both classes first.
func TestLabSymmetricPairGivesUpAtOnce(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	ctx := testContext(t, 2*time.Minute)
	sym := natlab.Side{NAT: natlab.NATSymmetric}
	p, err := natlab.Scenario{Name: "symmetric×symmetric", A: sym, B: sym}.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeWithTest(t, p.Lab)
	for _, h := range []*natlab.Host{p.A, p.B} {
		if err := ipv4Only(h); err != nil {
			t.Fatal(err)
		}
	}
	rdv := p.Rendezvous()
	addAltAddrs(t, rdv)
	start(t, in(rdv), nil, nil, "serve", "--listen", fmt.Sprintf(":%d", rdvPort), "--alt-addr", altAddr4.String()).
		waitStderr(`rendezvous serving.*addr=`+regexp.QuoteMeta(altAddr4.String()), 30*time.Second)
	rv := netip.AddrPortFrom(rdv.Addr(), rdvPort).String()
	const timeout = 15 * time.Second
	l := start(t, in(p.A), nil, nil, "listen", "-r", rv, "--relay", "never", "--timeout", timeout.String(), "svc")
	l.waitStderr(`listening as`, 30*time.Second)
	began := time.Now()
	d := start(t, in(p.B), nil, nil, "dial", "-v", "-r", rv, "--relay", "never", "--timeout", timeout.String(), "svc")
	code := d.wait(timeout + 20*time.Second)
	took := time.Since(began)
	stderr := d.stderr.String()
	if code != 3 {
		t.Fatalf("dial exit %d, want 3; stderr:\n%s", code, stderr)
	}
	if took > timeout/3 {
		t.Errorf("dial gave up after %v: it should know at once, not near --timeout %v", took, timeout)
	}
	if !strings.Contains(stderr, "NAT classes before punching: ours mapping endpoint-dependent") ||
		!strings.Contains(stderr, "the peer's mapping endpoint-dependent") {
		t.Errorf("dial -v does not show both measured classes:\n%s", stderr)
	}
	checkOneLineError(t, stderr, "can exist")
	t.Logf("symmetric×symmetric: dial gave up after %v: %s", took, lastLine(stderr))
}
