package rendezvous

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/sockopt"
)

// altServer serves on 127.0.0.1 with the alternate address 127.0.0.2 (all
// of 127/8 is loopback on Linux).
func altServer(t *testing.T, opts ...ServerOption) (*Server, string) {
	t.Helper()
	srv, addr := startServer(t, append([]ServerOption{WithAltAddr(netip.MustParseAddrPort("127.0.0.2:0"))}, opts...)...)
	// The primary accepts only once the alternate address is bound.
	if _, err := BindingFrom(testCtx(t), addr, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	return srv, addr
}

func TestBindingOtherAddressOnlyWhenBound(t *testing.T) {
	ctx := testCtx(t)
	_, single := startServer(t)
	b, err := BindingFrom(ctx, single, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Other.IsValid() || b.Origin.IsValid() {
		t.Errorf("a single-address server sent OTHER-ADDRESS %v / RESPONSE-ORIGIN %v", b.Other, b.Origin)
	}

	srv, addr := altServer(t)
	alts := srv.AltAddrs()
	if len(alts) != 1 || alts[0].Addr() != netip.MustParseAddr("127.0.0.2") || alts[0].Port() == 0 {
		t.Fatalf("AltAddrs = %v", alts)
	}
	b, err = BindingFrom(ctx, addr, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Other != alts[0] || b.Origin.String() != addr {
		t.Errorf("OTHER-ADDRESS %v RESPONSE-ORIGIN %v, want %v and %v", b.Other, b.Origin, alts[0], addr)
	}
	// The alternate IP answers at the primary port too, without OTHER-ADDRESS.
	samePort := netip.AddrPortFrom(alts[0].Addr(), b.Origin.Port())
	b2, err := BindingFrom(ctx, samePort.String(), netip.AddrPort{})
	if err != nil {
		t.Fatalf("binding to %v: %v", samePort, err)
	}
	if b2.Other.IsValid() || b2.Origin != samePort {
		t.Errorf("at the alternate address: OTHER-ADDRESS %v RESPONSE-ORIGIN %v, want none and %v", b2.Other, b2.Origin, samePort)
	}
}

func TestAltAddrUnbindableFailsServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// 192.0.2.1 (TEST-NET-1) is no address of this host.
	srv := NewServer(WithAltAddr(netip.MustParseAddrPort("192.0.2.1:3479")))
	if err := srv.Serve(ln); err == nil || errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve with an alternate address not of this host: %v, want a bind error", err)
	}
}

func TestDialBack(t *testing.T) {
	ctx := testCtx(t)
	srv, addr := altServer(t, WithDialBack(time.Second, 2, 8))
	ln, err := sockopt.ListenConfig().Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr).AddrPort()
	p, err := DialProbe(ctx, addr, local)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	type got struct {
		nonce  [DialBackNonceSize]byte
		remote netip.AddrPort
		err    error
	}
	accepted := make(chan got, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- got{err: err}
			return
		}
		defer c.Close()
		n, err := ReadDialBack(c, 5*time.Second)
		accepted <- got{n, c.RemoteAddr().(*net.TCPAddr).AddrPort(), err}
	}()
	nonce := [DialBackNonceSize]byte{1, 2, 3}
	res, err := p.DialBack(ctx, nonce)
	if err != nil || res != DialBackConnected {
		t.Fatalf("DialBack = %v, %v; want connected", res, err)
	}
	g := <-accepted
	if g.err != nil || g.nonce != nonce {
		t.Fatalf("at our listener: nonce %x, err %v; want %x", g.nonce, g.err, nonce)
	}
	alt := srv.AltAddrs()[0]
	if g.remote.Addr() != alt.Addr() || g.remote.Port() == alt.Port() || g.remote.String() == addr ||
		g.remote.Port() == netip.MustParseAddrPort(addr).Port() {
		t.Errorf("dial-back came from %v: want the alternate IP %v from a port the server does not listen on", g.remote, alt.Addr())
	}

	// A port without a listener: the kernel's RST, reported as refused.
	p2, err := DialProbe(ctx, addr, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if res, err := p2.DialBack(ctx, nonce); err != nil || res != DialBackRefused {
		t.Errorf("DialBack to a port without listener = %v, %v; want refused", res, err)
	}
	// The burst of 2 per IP is spent: the third is refused with 429.
	var se *ServerError
	if _, err := p2.DialBack(ctx, nonce); !errors.As(err, &se) || se.Code != CodeTooManyRequests {
		t.Errorf("third dial-back from one IP: %v, want 429", err)
	}
}

func TestDialBackWithoutAltAddress(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	p, err := DialProbe(ctx, addr, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.DialBack(ctx, [DialBackNonceSize]byte{}); !errors.Is(err, ErrNoAltAddress) {
		t.Errorf("DialBack on a single-address server: %v, want ErrNoAltAddress", err)
	}
}

// TestClassInPeerInfo: with WithNATCheck, each side's class reaches the
// other in its peer info (on loopback: no NAT).
func TestClassInPeerInfo(t *testing.T) {
	ctx := testCtx(t)
	_, addr := altServer(t)
	reg, err := Register(ctx, addr, reusedPort(t), "svc", nil, WithNATCheck(true))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if c := reg.Class(); c.Mapping != MappingNone {
		t.Errorf("listener's class %v, want mapping none on loopback", c)
	}
	pi, ctl, err := Connect(ctx, addr, reusedPort(t), "svc", nil, WithNATCheck(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if pi.Class.Mapping != MappingNone || pi.LocalClass.Mapping != MappingNone {
		t.Errorf("dialer's peer info: peer %v, local %v; want mapping none", pi.Class, pi.LocalClass)
	}
	lpi, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The listener's own class (no NAT) leaves no verdict to the dialer's:
	// the server paired without waiting for it (classupdate.go), so the
	// listener has it only if it happened to arrive first; whatever it has
	// is never a wrong class.
	if lpi.Class.Measured() && lpi.Class.Mapping != MappingNone {
		t.Errorf("listener's peer info: dialer class %v, want not measured or mapping none", lpi.Class)
	}
	// Without the check nothing is claimed.
	pi2, ctl2, err := Connect(ctx, addr, reusedPort(t), "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl2.Close()
	if pi2.LocalClass.Measured() {
		t.Errorf("without WithNATCheck: local class %v", pi2.LocalClass)
	}
	if lpi2, err := reg.Next(ctx); err != nil || lpi2.Class.Measured() {
		t.Errorf("listener saw class %v (%v) for a dialer that measured nothing", lpi2.Class, err)
	}
}

// TestClassWaitedForWhenItMatters: a listener whose class lets the
// dialer's rule the direct path out (symmetric) gets the dialer's class in
// its peer info, although the dialer sends it after its Connect
// (NAT-CLASS-FOLLOWS, ClassUpdate); and both sides see the same classes.
func TestClassWaitedForWhenItMatters(t *testing.T) {
	ctx := testCtx(t)
	_, addr := altServer(t)
	cfg := newClientConfig(nil)
	lc, err := dialControl(ctx, addr, reusedPort(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	sym := NATClass{Mapping: MappingEndpointDependent}
	if _, err := lc.request(ctx, &message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: "sym",
		Class: sym, HasClass: true}); err != nil {
		t.Fatal(err)
	}
	pi, ctl, err := Connect(ctx, addr, reusedPort(t), "sym", nil, WithNATCheck(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if pi.Class != sym || pi.LocalClass.Mapping != MappingNone {
		t.Fatalf("dialer: peer %v, local %v; want %v and mapping none", pi.Class, pi.LocalClass, sym)
	}
	for {
		select {
		case msg := <-lc.in:
			if msg.Type.Method != methodPeerInfo {
				continue
			}
			if !msg.HasClass || msg.Class != pi.LocalClass {
				t.Fatalf("listener's peer info carries dialer class %v (has %v), want %v", msg.Class, msg.HasClass, pi.LocalClass)
			}
			return
		case <-ctx.Done():
			t.Fatal("no peer info at the listener")
		}
	}
}
