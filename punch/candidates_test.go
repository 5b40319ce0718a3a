package punch

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"
)

func TestHostAddrs(t *testing.T) {
	addrs := []netip.Addr{
		netip.MustParseAddr("192.168.1.10"),
		netip.MustParseAddr("2001:db8::10"),
		netip.MustParseAddr("::ffff:10.0.0.7"), // IPv4-mapped: advertised as IPv4
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("fe80::1"),
		netip.MustParseAddr("169.254.1.1"),
	}
	v4 := []netip.AddrPort{netip.MustParseAddrPort("192.168.1.10:5000"), netip.MustParseAddrPort("10.0.0.7:5000")}
	both := []netip.AddrPort{netip.MustParseAddrPort("192.168.1.10:5000"), netip.MustParseAddrPort("[2001:db8::10]:5000"),
		netip.MustParseAddrPort("10.0.0.7:5000")}
	for _, tc := range []struct {
		local     string
		dualStack bool
		want      []netip.AddrPort
	}{
		{"0.0.0.0:5000", true, both}, // the default local address on a dual-stack host
		{"0.0.0.0:5000", false, v4},  // a host without IPv6: Go listened IPv4-only
		{"[::]:5000", true, both},
	} {
		got := hostAddrs(netip.MustParseAddrPort(tc.local), tc.dualStack, addrs)
		if !slices.Equal(got, tc.want) {
			t.Errorf("hostAddrs(%s, dual-stack %v) = %v, want %v", tc.local, tc.dualStack, got, tc.want)
		}
	}
}

// With the default local address, 0.0.0.0, an Endpoint listens dual-stack
// where the host has IPv6, so its IPv6 LAN addresses are candidates too.
func TestDefaultEndpointAdvertisesIPv6(t *testing.T) {
	if !hasIPv6Loopback() {
		if os.Getenv("CI") == "true" {
			t.Fatal("no IPv6 on this host")
		}
		t.Skip("no IPv6 on this host")
	}
	e := newEndpoint(t, netip.AddrPort{})
	if !e.dualStack {
		t.Fatalf("endpoint on %v is not dual-stack on a host with IPv6", e.Addr())
	}
	// Reachable over IPv6 indeed: a connection to [::1] reaches its listener.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), e.Addr().Port()).String())
	if err != nil {
		t.Fatalf("the endpoint is not reachable over IPv6: %v", err)
	}
	c.Close()

	// A rendezvous elsewhere than loopback (never contacted here) makes the
	// endpoint list its interface addresses.
	got := e.hostCandidates("192.0.2.1:3478")
	var want6 []netip.AddrPort
	for _, a := range hostAddrs(netip.MustParseAddrPort("[::]:1"), true, upInterfaceAddrs()) {
		if a.Addr().Is6() {
			want6 = append(want6, netip.AddrPortFrom(a.Addr(), e.Addr().Port()))
		}
	}
	if len(want6) == 0 {
		t.Logf("no global IPv6 address on an interface here: only the dual-stack listener is checked")
	}
	for _, a := range want6 {
		if !slices.Contains(got, a) {
			t.Errorf("host candidates %v lack the IPv6 LAN address %v", got, a)
		}
	}
}
