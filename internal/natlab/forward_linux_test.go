//go:build linux

package natlab_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// A port forward lets a connection from the internet through a NAT that
// drops unsolicited SYNs, to the LAN host, with the client's own address;
// the router's conntrack table shows the translation.
func TestForwardTCP(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx, cancelAll := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancelAll()
	r := must[*natlab.Router](t)(l.AddRouter(ctx, "r", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", r))
	client := must[*natlab.Host](t)(l.AddPublicHost(ctx, "client"))
	serveAddrEcho(t, p, "tcp4", ":5201")
	serveAddrEcho(t, p, "tcp4", ":5202")
	wan := func(port uint16) string { return hostPort(r.Addr(), port) }

	// The control: without the forward the NAT drops the SYN.
	dctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	if c, err := client.Dial(dctx, "tcp4", wan(5201)); err == nil {
		c.Close()
		t.Fatal("connected through a drop NAT without a port forward")
	}
	cancel()

	for _, port := range []uint16{5201, 5202} {
		if err := r.ForwardTCP(port, netip.AddrPortFrom(p.Addr(), port)); err != nil {
			t.Fatal(err)
		}
	}
	for _, port := range []uint16{5201, 5202} {
		seen, c, err := observe(ctx, client, netip.AddrPort{}, wan(port))
		if err != nil {
			t.Fatalf("through the forward of port %d: %v", port, err)
		}
		if seen.Addr() != client.Addr() {
			t.Errorf("port %d: the LAN host saw the client at %v, want %v (DNAT keeps the source)", port, seen, client.Addr())
		}
		fmt.Fprintf(c, "hello %d\n", port)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != fmt.Sprintf("hello %d\n", port) {
			t.Errorf("port %d: echo %q, %v", port, line, err)
		}
		flows, err := r.Conntrack()
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, f := range flows {
			if f.Proto == "tcp" && f.Orig.Src == seen && f.Orig.Dst == netip.MustParseAddrPort(wan(port)) {
				found = true
				if want := netip.AddrPortFrom(p.Addr(), port); f.Reply.Src != want || f.State != "ESTABLISHED" {
					t.Errorf("port %d: conntrack has %v, want the reply from %v, ESTABLISHED", port, f, want)
				}
			}
		}
		if !found {
			t.Errorf("port %d: no conntrack flow from %v to %s in %v", port, seen, wan(port), flows)
		}
		c.Close()
	}

	for _, bad := range []struct {
		port uint16
		to   netip.AddrPort
	}{
		{0, netip.AddrPortFrom(p.Addr(), 1)},
		{1, netip.AddrPortFrom(p.Addr(), 0)},
		{1, netip.AddrPortFrom(client.Addr(), 1)}, // not on the LAN
		{1, netip.AddrPortFrom(p.Addr6(), 1)},     // IPv6 is not translated
	} {
		if err := r.ForwardTCP(bad.port, bad.to); err == nil {
			t.Errorf("ForwardTCP(%d, %v) accepted", bad.port, bad.to)
		}
	}
	l.Close()
	if err := r.ForwardTCP(5203, netip.AddrPortFrom(p.Addr(), 5203)); !errors.Is(err, natlab.ErrClosed) {
		t.Errorf("ForwardTCP after Close: %v, want ErrClosed", err)
	}
}

// A TCP connection out through a NAT: the router's conntrack table shows
// it masqueraded, while it is open.
func TestConntrackMasquerade(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	r := must[*natlab.Router](t)(l.AddRouter(ctx, "r", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", r))
	rdv := l.Rendezvous()
	serveAddrEcho(t, rdv, "tcp4", ":7000")
	seen, c, err := observe(ctx, p, netip.AddrPort{}, hostPort(rdv.Addr(), 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	flows, err := r.Conntrack()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if f.Orig.Src == local {
			if f.Reply.Dst != seen || f.State != "ESTABLISHED" {
				t.Errorf("conntrack has %v; want the reply to the mapping %v, ESTABLISHED", f, seen)
			}
			return
		}
	}
	t.Errorf("no flow from %v in %v", local, flows)
}
