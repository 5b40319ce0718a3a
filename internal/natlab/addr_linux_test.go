//go:build linux

package natlab_test

import (
	"net/netip"
	"testing"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// TestAddAddr: a second address on the rendezvous host, IPv4 and IPv6,
// serves at once, and a peer behind a NAT reaches it with its traffic
// translated as for the host's own address; a bad prefix is refused.
func TestAddAddr(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	home := must[*natlab.Router](t)(l.AddRouter(ctx, "home", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", home))
	rdv := l.Rendezvous()
	second4 := netip.MustParsePrefix("203.0.113.251/24")
	second6 := netip.MustParsePrefix("2001:db8::fb/64")
	for _, a := range []netip.Prefix{second4, second6} {
		if err := rdv.AddAddr(a); err != nil {
			t.Fatal(err)
		}
	}
	serveAddrEcho(t, rdv, "tcp", ":7000")
	for _, c := range []struct {
		server, want netip.Addr
	}{
		{second4.Addr(), home.Addr()},
		{second6.Addr(), p.Addr6()},
	} {
		got, conn, err := observe(ctx, p, netip.AddrPort{}, hostPort(c.server, 7000))
		if err != nil {
			t.Fatalf("reaching the added address %v: %v", c.server, err)
		}
		conn.Close()
		if got.Addr() != c.want {
			t.Errorf("via %v the server saw %v, want address %v", c.server, got, c.want)
		}
	}
	if err := rdv.AddAddr(netip.Prefix{}); err == nil {
		t.Error("AddAddr of the zero Prefix: no error")
	}
	if err := rdv.AddAddr(second4); err == nil {
		t.Error("adding the same address twice: no error")
	}
}
