package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Side is one peer's place in a [Scenario].
type Side struct {
	// NAT is the router the peer sits behind; NATNone puts the peer
	// directly on the internet bridge as a public host.
	NAT NATKind
	// Carrier, when not NATNone, puts that router behind a carrier NAT of
	// this kind: double NAT.
	Carrier NATKind
}

// Scenario is one cell of the test matrix: two peers, "a" and "b", their
// NATs, and the WAN conditions between them.
type Scenario struct {
	Name string
	A, B Side
	// SameNAT puts b behind a's router (B is ignored). Linux masquerade
	// does not hairpin, so they can only meet over the LAN.
	SameNAT bool
	// Delay is the one-way delay between the two peers, split evenly over
	// their two WAN links (the outermost router's WAN, or a public host's
	// link). A peer's one-way delay to the rendezvous host is Delay/2.
	Delay time.Duration
	// Loss is the drop probability on each of those links, per direction.
	Loss float64
	// IPv6 says the peers should talk over IPv6 (no NAT, stateful
	// firewalls). The lab is always dual-stack; [Pair.Addr] picks the
	// family.
	IPv6 bool
	// Direct is whether a direct connection is expected: what was seen
	// with a bare punch loop on these machines, or follows from it (see
	// "What the engine does about real NATs" in docs/ARCHITECTURE.md).
	// Symmetric NAT never punches directly.
	Direct bool
}

func (s Scenario) String() string { return s.Name }

// Pair is a built scenario: the lab and its two peers. Close it (the
// embedded [Lab.Close]).
type Pair struct {
	*Lab
	Scenario Scenario
	A, B     *Host
}

// Addr is h's address in the scenario's family.
func (p *Pair) Addr(h *Host) netip.Addr {
	if p.Scenario.IPv6 {
		return h.Addr6()
	}
	return h.Addr()
}

// RendezvousAddr is the rendezvous host's address in the scenario's family.
func (p *Pair) RendezvousAddr() netip.Addr { return p.Addr(p.Rendezvous()) }

// Addresses the rendezvous host may take as its second address, outside
// what the lab hands out on the internet segment (hosts count up from .10).
var (
	RendezvousAlt4 = netip.MustParseAddr("203.0.113.250")
	RendezvousAlt6 = netip.MustParseAddr("2001:db8::fa")
)

// AddRendezvousAlt gives the rendezvous host a second address in the
// scenario's family and returns it: what `serve --alt-addr` needs to
// measure the peers' NAT mapping and filtering.
func (p *Pair) AddRendezvousAlt() (netip.Addr, error) {
	a, bits := RendezvousAlt4, InternetPrefix.Bits()
	if p.Scenario.IPv6 {
		a, bits = RendezvousAlt6, InternetPrefix6.Bits()
	}
	if err := p.Rendezvous().AddAddr(netip.PrefixFrom(a, bits)); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// Build creates the scenario's lab: a fresh topology, closed again if any
// step fails.
func (s Scenario) Build(ctx context.Context, opts ...Option) (*Pair, error) {
	l, err := New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	p, err := s.build(ctx, l)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("natlab: building %s: %w", s.Name, err), l.Close())
	}
	return p, nil
}

func (s Scenario) build(ctx context.Context, l *Lab) (*Pair, error) {
	p := &Pair{Lab: l, Scenario: s}
	var err error
	var outerA, outerB Node
	if p.A, outerA, err = addSide(ctx, l, "a", s.A); err != nil {
		return nil, err
	}
	if s.SameNAT {
		if p.A.Router() == nil {
			return nil, errors.New("SameNAT needs a NAT on side A")
		}
		if p.B, err = l.AddPeer(ctx, "b", p.A.Router()); err != nil {
			return nil, err
		}
	} else if p.B, outerB, err = addSide(ctx, l, "b", s.B); err != nil {
		return nil, err
	}
	for _, n := range []Node{outerA, outerB} {
		if n == nil || (s.Delay == 0 && s.Loss == 0) {
			continue
		}
		if err := l.SetLink(n, LinkParams{Delay: s.Delay / 2, Loss: s.Loss}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addSide adds a peer named name as side describes and returns it with the
// node whose link faces the internet.
func addSide(ctx context.Context, l *Lab, name string, side Side) (*Host, Node, error) {
	if side.NAT == NATNone {
		h, err := l.AddPublicHost(ctx, name)
		return h, h, err
	}
	var outer *Router
	var r *Router
	var err error
	if side.Carrier != NATNone {
		if outer, err = l.AddRouter(ctx, name+"-cgn", side.Carrier); err != nil {
			return nil, nil, err
		}
		r, err = l.AddRouterBehind(ctx, name+"-nat", side.NAT, outer)
	} else {
		r, err = l.AddRouter(ctx, name+"-nat", side.NAT)
		outer = r
	}
	if err != nil {
		return nil, nil, err
	}
	h, err := l.AddPeer(ctx, name, r)
	return h, outer, err
}

// Scenarios is the test matrix, in the order the e2e tests and the demo
// list it.
func Scenarios() []Scenario {
	nat := func(k NATKind) Side { return Side{NAT: k} }
	pub := Side{}
	const wan = 50 * time.Millisecond
	return []Scenario{
		{Name: "drop×drop", A: nat(NATDrop), B: nat(NATDrop), Direct: true},
		{Name: "rst×rst", A: nat(NATReject), B: nat(NATReject), Direct: true},
		{Name: "open×open", A: nat(NATOpen), B: nat(NATOpen), Direct: true},
		{Name: "drop×rst", A: nat(NATDrop), B: nat(NATReject), Direct: true},
		{Name: "drop×open", A: nat(NATDrop), B: nat(NATOpen), Direct: true},
		{Name: "public×drop", A: pub, B: nat(NATDrop), Direct: true},
		{Name: "public×public", A: pub, B: pub, Direct: true},
		{Name: "double×drop", A: Side{NAT: NATDrop, Carrier: NATDrop}, B: nat(NATDrop), Direct: true},
		{Name: "same-nat", A: nat(NATDrop), SameNAT: true, Direct: true},
		{Name: "symmetric×drop", A: nat(NATSymmetric), B: nat(NATDrop), Direct: false},
		{Name: "symmetric×symmetric", A: nat(NATSymmetric), B: nat(NATSymmetric), Direct: false},
		{Name: "drop×drop-50ms", A: nat(NATDrop), B: nat(NATDrop), Delay: wan, Direct: true},
		{Name: "rst×rst-50ms", A: nat(NATReject), B: nat(NATReject), Delay: wan, Direct: true},
		{Name: "drop×drop-lossy", A: nat(NATDrop), B: nat(NATDrop), Delay: wan, Loss: 0.05, Direct: true},
		{Name: "drop×drop-ipv6", A: nat(NATDrop), B: nat(NATDrop), IPv6: true, Direct: true},
		{Name: "rst×rst-ipv6", A: nat(NATReject), B: nat(NATReject), IPv6: true, Direct: true},
	}
}

// Lookup finds a scenario of [Scenarios] by name. "x" may stand for "×"
// and case does not matter: "dropxdrop", "DROP×DROP-50ms".
func Lookup(name string) (Scenario, error) {
	want := normalize(name)
	var names []string
	for _, s := range Scenarios() {
		if normalize(s.Name) == want {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("natlab: no scenario %q; have %s", name, strings.Join(names, ", "))
}

func normalize(s string) string {
	return strings.NewReplacer("×", "x", " ", "-", "_", "-").Replace(strings.ToLower(strings.TrimSpace(s)))
}
