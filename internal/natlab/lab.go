package natlab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"time"
)

// ErrUnsupported is returned by every constructor on systems without Linux
// network namespaces.
var ErrUnsupported = errors.New("natlab: the real-NAT lab needs Linux network namespaces")

// ErrClosed is returned when a closed [Lab] is used.
var ErrClosed = errors.New("natlab: closed")

// Addresses of the internet segment. They are documentation prefixes
// (RFC 5737, RFC 3849) and exist only inside the lab's namespaces.
var (
	InternetPrefix  = netip.MustParsePrefix("203.0.113.0/24")
	InternetPrefix6 = netip.MustParsePrefix("2001:db8::/64")
)

// Lab is one topology of namespaces. Create it with [New], add routers and
// hosts, and always Close it (tests: t.Cleanup(l.Close)). Its methods are
// safe for concurrent use.
type Lab struct {
	cfg    config
	prefix string // unique per lab; every namespace name starts with it

	mu       sync.Mutex
	closed   bool
	nodes    []*node // in creation order; torn down in reverse
	names    map[string]bool
	rdv      *Host
	inetPort int // counter for port names on the internet bridge
	wanNext  int // next host octet on the internet segment
	lanNext  int // next LAN index N (10.0.N.0/24)
	procs    []*exec.Cmd
	shapers  []shaper
	captures []*Capture
}

// node is what hosts and routers share: a namespace with one access link.
type node struct {
	lab    *Lab
	name   string
	ns     string // namespace name
	link   string // the access interface inside ns: "eth0" or "wan"
	addr4  netip.Addr
	addr6  netip.Addr
	parent *Router // the router whose LAN this link is on; nil: the internet
	shaper shaper  // the WAN emulation stage of link, once configured
	self   *Router // the Router embedding this node, if it is one
}

// shaper is a running delay/loss stage (see delay_linux.go).
type shaper interface {
	set(p LinkParams)
	close() error
}

// Node is a [Host] or a [Router]: something with an access link that
// [Lab.SetDelay] and [Lab.SetLoss] can shape.
type Node interface {
	base() *node
}

// Host is an end system: the rendezvous host, a public host on the internet
// bridge, or a peer behind a router.
type Host struct{ node }

// Router is a NAT router: its WAN link is on the internet bridge (or on the
// LAN of an upstream router, for double NAT) and its LAN is a bridge.
type Router struct {
	node
	kind     NATKind
	index    int // N in 10.0.N.0/24 and 2001:db8:0:N::/64
	lan4     netip.Prefix
	lan6     netip.Prefix
	hostNext int // next host octet on the LAN
	portNext int // counter for port names on the LAN bridge

	forwarding bool // ForwardTCP set up its table; guarded by lab.mu
}

func (n *node) base() *node { return n }

// Name is the name given when the node was added.
func (n *node) Name() string { return n.name }

// Namespace is the name of the node's network namespace, as `ip netns list`
// shows it, e.g. for `ip netns exec NAME tcpdump -ni eth0`.
func (n *node) Namespace() string { return n.ns }

// Link is the name of the access interface inside the namespace: "eth0"
// for hosts, "wan" for routers.
func (n *node) Link() string { return n.link }

// Addr is the node's IPv4 address on its access link: the public address
// for hosts on the internet bridge and for routers on it (the address their
// NAT maps to), a private one for peers.
func (n *node) Addr() netip.Addr { return n.addr4 }

// Addr6 is the node's IPv6 address (2001:db8::/32, never translated).
func (n *node) Addr6() netip.Addr { return n.addr6 }

// Router is the router whose LAN the node's access link is on, nil when it
// is on the internet bridge. For a router behind a carrier NAT it is the
// carrier router.
func (n *node) Router() *Router { return n.parent }

// Kind is the router's NAT behaviour.
func (r *Router) Kind() NATKind { return r.kind }

// LAN is the router's IPv4 LAN prefix (10.0.N.0/24); the router is .1.
func (r *Router) LAN() netip.Prefix { return r.lan4 }

// LAN6 is the router's IPv6 LAN prefix (2001:db8:0:N::/64); the router is ::1.
func (r *Router) LAN6() netip.Prefix { return r.lan6 }

// Prefix is the string every namespace of this lab starts with.
func (l *Lab) Prefix() string { return l.prefix }

// Rendezvous is the rendezvous host at 203.0.113.2 (2001:db8::2), present
// in every lab.
func (l *Lab) Rendezvous() *Host { return l.rdv }

// Namespaces lists the names of the lab's namespaces in creation order.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.nodes))
	for _, n := range l.nodes {
		out = append(out, n.ns)
	}
	return out
}

// LinkParams describe the emulated WAN link of a node, applied in each
// direction.
type LinkParams struct {
	Delay time.Duration // one-way delay
	Loss  float64       // probability in [0,1] that a packet is dropped
}

// Listen listens on address inside the host's namespace (see [Host.Do]).
// The listener keeps working from any goroutine.
func (h *Host) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	return h.ListenConfig(ctx, &net.ListenConfig{}, network, address)
}

// ListenConfig is Listen with a caller's ListenConfig (e.g. one from
// sockopt.ListenConfig).
func (h *Host) ListenConfig(ctx context.Context, lc *net.ListenConfig, network, address string) (ln net.Listener, err error) {
	err = h.Do(func() error {
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// Dial connects to address from inside the host's namespace.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	return h.DialWith(ctx, &net.Dialer{}, network, address)
}

// DialWith is Dial with a caller's Dialer (e.g. one from sockopt.Dialer).
func (h *Host) DialWith(ctx context.Context, d *net.Dialer, network, address string) (c net.Conn, err error) {
	err = h.Do(func() error {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
