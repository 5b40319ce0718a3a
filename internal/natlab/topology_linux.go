//go:build linux

package natlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
)

// The internet segment's gateway (the "internet" namespace itself, which
// routes IPv6 towards the routers' LAN prefixes) and the rendezvous host.
var (
	inetGW4 = netip.MustParseAddr("203.0.113.1")
	inetGW6 = netip.MustParseAddr("2001:db8::1")
	rdvAddr = 2 // host octet of the rendezvous host
)

// firstHost is the first host octet handed out on a segment, leaving room
// for fixed addresses below it.
const firstHost = 10

// bridgeNF are the br_netfilter switches. They default to 1 in every new
// namespace on these machines; left on, frames bridged between LAN ports
// (and between routers on the internet bridge) traverse the IP forward
// chain and hit its drop policy.
var bridgeNF = []string{
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"net.bridge.bridge-nf-call-arptables",
}

func bridgeNFOff() [][2]string {
	var kv [][2]string
	for _, k := range bridgeNF {
		kv = append(kv, [2]string{k, "0"})
	}
	return kv
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

// New creates a lab: the internet namespace with its bridge and the
// rendezvous host. Close it on every path; if New fails, it has already
// cleaned up.
func New(ctx context.Context, opts ...Option) (*Lab, error) {
	var rnd [2]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	l := &Lab{
		cfg: newConfig(opts),
		// pid for Sweep, random so two labs of one process differ.
		prefix:  fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(rnd[:])),
		names:   map[string]bool{"internet": true},
		wanNext: firstHost,
	}
	if err := l.setupInternet(ctx); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) setupInternet(ctx context.Context) error {
	inet := &node{lab: l, name: "internet", ns: l.prefix + "-internet"}
	l.nodes = append(l.nodes, inet)
	h, err := l.addNetns(inet.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := sysctl(inet.ns, append(bridgeNFOff(), [2]string{"net.ipv6.conf.all.forwarding", "1"}), bridgeNF...); err != nil {
		return err
	}
	if err := addBridge(h, inet.ns, "br0", netip.PrefixFrom(inetGW4, 24), netip.PrefixFrom(inetGW6, 64)); err != nil {
		return err
	}
	r := &Host{node{lab: l, name: "rendezvous", ns: l.prefix + "-rendezvous", link: "eth0",
		addr4: hostAddr(InternetPrefix, rdvAddr), addr6: hostAddr(InternetPrefix6, rdvAddr)}}
	l.names[r.name] = true
	l.nodes = append(l.nodes, &r.node)
	if err := l.attach(ctx, &r.node); err != nil {
		return err
	}
	l.rdv = r
	return nil
}

// hostAddr is the address with host part i in p (i < 256).
func hostAddr(p netip.Prefix, i int) netip.Addr {
	a := p.Addr().AsSlice()
	a[len(a)-1] = byte(i)
	addr, _ := netip.AddrFromSlice(a)
	return addr
}

// reserve checks and records a node name and allocates its address on the
// segment it will join. Called with l.mu held.
func (l *Lab) reserve(name string, parent *Router) (ns string, a4, a6 netip.Addr, err error) {
	if l.closed {
		return "", a4, a6, ErrClosed
	}
	if !validName.MatchString(name) {
		return "", a4, a6, fmt.Errorf("natlab: bad name %q: use 1-20 of a-z, 0-9, '-'", name)
	}
	if l.names[name] {
		return "", a4, a6, fmt.Errorf("natlab: name %q already used in this lab", name)
	}
	if parent == nil {
		if l.wanNext > 250 {
			return "", a4, a6, errors.New("natlab: internet segment full")
		}
		a4, a6 = hostAddr(InternetPrefix, l.wanNext), hostAddr(InternetPrefix6, l.wanNext)
		l.wanNext++
	} else {
		if parent.hostNext > 250 {
			return "", a4, a6, fmt.Errorf("natlab: LAN of %s full", parent.name)
		}
		a4, a6 = hostAddr(parent.lan4, parent.hostNext), hostAddr(parent.lan6, parent.hostNext)
		parent.hostNext++
	}
	l.names[name] = true
	return l.prefix + "-" + name, a4, a6, nil
}

// attach creates n's namespace and its access link to the segment it
// belongs on (the internet bridge, or its parent router's LAN bridge),
// with addresses and default routes.
func (l *Lab) attach(ctx context.Context, n *node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := l.addNetns(n.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	segNS, bridge, gw4, gw6 := l.prefix+"-internet", "br0", inetGW4, inetGW6
	l.mu.Lock()
	var port string
	if p := n.parent; p != nil {
		segNS, bridge, gw4, gw6 = p.ns, "lan", hostAddr(p.lan4, 1), hostAddr(p.lan6, 1)
		p.portNext++
		port = fmt.Sprintf("v%d", p.portNext)
	} else {
		l.inetPort++
		port = fmt.Sprintf("v%d", l.inetPort)
	}
	l.mu.Unlock()
	seg, err := handle(segNS)
	if err != nil {
		return err
	}
	defer seg.Close()
	// Both ends are created directly in their namespaces, never in the
	// root one, so short fixed names (eth0, wan, vN) cannot collide with
	// another lab's.
	if err := addVeth(seg, segNS, bridge, port, n.ns, n.link); err != nil {
		return err
	}
	if err := addAddrs(h, n.ns, n.link, netip.PrefixFrom(n.addr4, 24), netip.PrefixFrom(n.addr6, 64)); err != nil {
		return err
	}
	for _, gw := range []netip.Addr{gw4, gw6} {
		if err := addRoute(h, n.ns, netip.Prefix{}, gw); err != nil {
			return err
		}
	}
	return nil
}

// AddRouter adds a NAT router of the given kind with its WAN link on the
// internet bridge. Its LAN is 10.0.N.0/24 and 2001:db8:0:N::/64.
func (l *Lab) AddRouter(ctx context.Context, name string, kind NATKind) (*Router, error) {
	return l.addRouter(ctx, name, kind, nil)
}

// AddRouterBehind adds a NAT router whose WAN link is on the LAN of
// upstream: a home router behind a carrier-grade NAT (double NAT).
func (l *Lab) AddRouterBehind(ctx context.Context, name string, kind NATKind, upstream *Router) (*Router, error) {
	if upstream == nil || upstream.lab != l {
		return nil, errors.New("natlab: AddRouterBehind needs an upstream router of this lab")
	}
	return l.addRouter(ctx, name, kind, upstream)
}

func (l *Lab) addRouter(ctx context.Context, name string, kind NATKind, parent *Router) (*Router, error) {
	if kind == NATNone || kind > NATSymmetricRandom {
		return nil, fmt.Errorf("natlab: router %s: NAT kind %v is not a router kind (use AddPublicHost for no NAT)", name, kind)
	}
	l.mu.Lock()
	ns, a4, a6, err := l.reserve(name, parent)
	if err == nil && l.lanNext >= 254 {
		err = errors.New("natlab: too many routers")
	}
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	l.lanNext++
	idx := l.lanNext
	r := &Router{
		node:     node{lab: l, name: name, ns: ns, link: "wan", addr4: a4, addr6: a6, parent: parent},
		kind:     kind,
		index:    idx,
		lan4:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(idx), 0}), 24),
		lan6:     netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, byte(idx)}), 64),
		hostNext: firstHost,
	}
	r.self = r
	l.nodes = append(l.nodes, &r.node)
	l.mu.Unlock()

	if err := l.attach(ctx, &r.node); err != nil {
		return nil, err
	}
	kv := append(bridgeNFOff(),
		[2]string{"net.ipv4.ip_forward", "1"},
		[2]string{"net.ipv6.conf.all.forwarding", "1"},
	)
	if err := sysctl(ns, kv, bridgeNF...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := handle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := addBridge(h, ns, "lan", netip.PrefixFrom(hostAddr(r.lan4, 1), 24), netip.PrefixFrom(hostAddr(r.lan6, 1), 64)); err != nil {
		return nil, err
	}
	if err := installTables(ns, "router "+name, natTables(kind)); err != nil {
		return nil, err
	}
	// IPv6 is routed, not translated: every namespace upstream needs a
	// route to the new LAN prefix, via its child on the path down.
	via := r.addr6
	for up := parent; ; up = up.parent {
		upNS := l.prefix + "-internet"
		if up != nil {
			upNS = up.ns
		}
		uh, err := handle(upNS)
		if err != nil {
			return nil, err
		}
		err = addRoute(uh, upNS, r.lan6, via)
		uh.Close()
		if err != nil {
			return nil, err
		}
		if up == nil {
			break
		}
		via = up.addr6
	}
	return r, nil
}

// AddPeer adds a host on the LAN of r.
func (l *Lab) AddPeer(ctx context.Context, name string, r *Router) (*Host, error) {
	if r == nil || r.lab != l {
		return nil, errors.New("natlab: AddPeer needs a router of this lab")
	}
	return l.addHost(ctx, name, r)
}

// AddPublicHost adds a host directly on the internet bridge: no NAT, no
// firewall.
func (l *Lab) AddPublicHost(ctx context.Context, name string) (*Host, error) {
	return l.addHost(ctx, name, nil)
}

func (l *Lab) addHost(ctx context.Context, name string, parent *Router) (*Host, error) {
	l.mu.Lock()
	ns, a4, a6, err := l.reserve(name, parent)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	h := &Host{node{lab: l, name: name, ns: ns, link: "eth0", addr4: a4, addr6: a6, parent: parent}}
	l.nodes = append(l.nodes, &h.node)
	l.mu.Unlock()
	if err := l.attach(ctx, &h.node); err != nil {
		return nil, err
	}
	return h, nil
}

// Close tears the lab down: it kills the processes started with Command
// (their process groups), then any other process inside the lab's
// namespaces, stops the WAN stages, and deletes the namespaces (which
// removes their interfaces). It is idempotent and safe to call after a
// failed New or a failed test.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, shapers, captures, nodes := l.procs, l.shapers, l.captures, l.nodes
	l.procs, l.shapers, l.captures = nil, nil, nil
	l.mu.Unlock()

	var errs []error
	// A capture socket keeps its namespace alive: close them first. What
	// they hold stays readable.
	for _, c := range captures {
		c.stop()
		<-c.done
	}
	for _, c := range procs {
		if err := killGroup(c); err != nil {
			errs = append(errs, fmt.Errorf("natlab: killing %s: %w", commandName(c), err))
		}
	}
	for _, n := range nodes {
		killNetnsProcs(n.ns)
	}
	for _, s := range shapers {
		if err := s.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := deleteNetns(nodes[i].ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
