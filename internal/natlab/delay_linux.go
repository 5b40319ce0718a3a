//go:build linux

package natlab

// WAN emulation: one-way delay and random loss on a node's access link.
//
// This kernel has no netem qdisc and no nft queue expression (nft_queue),
// so packets are diverted with the xtables NFQUEUE target, which nf_tables
// runs through nft_compat as iptables-nft does (see queueTo), to a
// user-space stage in this process and released (or dropped) from there:
//
//   - The rules live in tables "ip lablink" and "ip6 lablink" at priority
//     raw (-300): prerouting for packets arriving on the link, and for a
//     router also packets arriving from its LAN (they are about to leave
//     through the WAN, after NAT); output for packets the node itself
//     sends out of the link. Raw runs before conntrack, so
//     a held packet carries no half-made conntrack entry. Holding outbound
//     packets before NAT rather than after it (netfilter has no hook after
//     conntrack confirmation) is equivalent as long as both directions get
//     the same delay: a new mapping becomes visible at send+d, and every
//     inbound packet reaches the NAT at arrival+d, so their order is that
//     of a link with the delay on the wire.
//   - One queue (number 0 of the node's namespace; queues are per
//     namespace) serves both directions; each direction gets the full
//     one-way delay, so a link with delay d adds 2d to a round trip through
//     it.
//   - The stage's netlink socket is opened on a thread switched into the
//     node's namespace and stays bound to it; afterwards two ordinary
//     goroutines serve it. The reader stamps each packet with its due time
//     (arrival + delay) and appends it to a FIFO; the releaser waits for
//     the head's due time and accepts it. Packets never wait behind each
//     other's delay, only until their own due time, and never overtake each
//     other (due times are kept non-decreasing, as on a real link, even
//     when the delay is lowered). Loss is decided on arrival: a dropped
//     packet gets an immediate DROP verdict.
//   - No queue bypass flag, i.e. fail closed: if the stage is gone, the
//     kernel drops what the rule diverts. A stage that died and silently
//     turned into a zero-delay link would let a test that depends on the
//     delay pass under the wrong conditions; a black-holed link fails
//     loudly (connection timeouts). The stage only stops in Close, right
//     before its namespace is deleted, and the rules are installed only
//     after the queue is bound, so in normal operation nothing is lost.
//   - The kernel holds up to stageQueueLen packets for the stage; beyond
//     that it drops (a full router buffer), which TCP recovers from.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
)

const stageQueueLen = 8192

// SetDelay sets the one-way delay of n's access link (a host's eth0, a
// router's WAN), applied to each direction, keeping its loss.
func (l *Lab) SetDelay(n Node, oneWay time.Duration) error {
	return l.shape(n, func(p *LinkParams) { p.Delay = oneWay })
}

// SetLoss sets the probability that a packet on n's access link is
// dropped, in each direction, keeping its delay.
func (l *Lab) SetLoss(n Node, p float64) error {
	return l.shape(n, func(lp *LinkParams) { lp.Loss = p })
}

// SetLink sets delay and loss of n's access link at once.
func (l *Lab) SetLink(n Node, p LinkParams) error {
	return l.shape(n, func(lp *LinkParams) { *lp = p })
}

func (l *Lab) shape(n Node, edit func(*LinkParams)) error {
	nd := n.base()
	if nd.lab != l {
		return errors.New("natlab: node of another lab")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	var p LinkParams
	if s, ok := nd.shaper.(*stage); ok {
		p = s.params()
	}
	edit(&p)
	if p.Delay < 0 || p.Delay > time.Minute {
		return fmt.Errorf("natlab: delay %v out of range [0, 1m]", p.Delay)
	}
	if !(p.Loss >= 0 && p.Loss <= 1) {
		return fmt.Errorf("natlab: loss %v out of range [0, 1]", p.Loss)
	}
	if nd.shaper == nil {
		// Holding l.mu across the setup keeps two concurrent first calls
		// from starting two stages on one link.
		s, err := l.startStage(nd, p)
		if err != nil {
			return err
		}
		nd.shaper = s
		l.shapers = append(l.shapers, s)
		return nil
	}
	nd.shaper.set(p)
	return nil
}

// stage is the running NFQUEUE consumer of one link.
type stage struct {
	q       *nfqueue
	delay   atomic.Int64  // nanoseconds
	loss    atomic.Uint64 // math.Float64bits
	rng     *rand.Rand    // reader goroutine only
	fifo    chan held
	stop    chan struct{}
	wg      sync.WaitGroup
	lastDue time.Time // reader goroutine only
	closed  sync.Once
	dropped atomic.Uint64
}

type held struct {
	id  uint32
	due time.Time
}

func (l *Lab) startStage(n *node, p LinkParams) (*stage, error) {
	var q *nfqueue
	if err := doIn(n.ns, func() (err error) {
		q, err = openNFQueue(0, stageQueueLen)
		return err
	}); err != nil {
		return nil, err
	}
	seed1, seed2 := rand.Uint64(), rand.Uint64()
	if l.cfg.seeded {
		seed1, seed2 = l.cfg.lossSeed, uint64(len(n.ns))
	}
	s := &stage{
		q:    q,
		rng:  rand.New(rand.NewPCG(seed1, seed2)),
		fifo: make(chan held, stageQueueLen),
		stop: make(chan struct{}),
	}
	s.set(p)
	s.wg.Add(2)
	go s.read()
	go s.release()

	if err := installTables(n.ns, "WAN emulation on "+n.name, linkTables(n)); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// linkTables divert n's link traffic to queue 0, in the raw position
// (priority raw, before conntrack) of an ip and an ip6 table. IPv6
// neighbour discovery and multicast are left alone: they stand for ARP,
// which no IP rule sees either.
func linkTables(n *node) []nftTable {
	r, isRouter := n.self, n.self != nil
	table := func(family nftables.TableFamily, skip []nftRule, lanExcl []netip.Prefix) nftTable {
		pre := []nftRule{rule(iifname(n.link), jump("link"))}
		if isRouter {
			// Outbound forwarded traffic, caught where it enters the
			// router (raw has no forward hook). Traffic for the LAN
			// itself is not crossing the WAN.
			for _, d := range lanExcl {
				pre = append(pre, rule(iifname("lan"), daddr(d), accept))
			}
			pre = append(pre, rule(iifname("lan"), jump("link")))
		}
		return nftTable{family: family, name: "lablink", chains: []nftChain{
			{name: "link", rules: append(skip, rule(queueTo(0)))},
			{name: "prerouting", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookPrerouting,
				prio: nftables.ChainPriorityRaw, policy: nftables.ChainPolicyAccept, rules: pre},
			{name: "output", typ: nftables.ChainTypeFilter, hook: nftables.ChainHookOutput,
				prio: nftables.ChainPriorityRaw, policy: nftables.ChainPolicyAccept,
				rules: []nftRule{rule(oifname(n.link), jump("link"))}},
		}}
	}
	var lan4, lan6 []netip.Prefix
	if isRouter {
		lan4 = []netip.Prefix{r.lan4}
		lan6 = []netip.Prefix{r.lan6, netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8")}
	}
	multicast := netip.MustParsePrefix("ff00::/8")
	return []nftTable{
		table(nftables.TableFamilyIPv4, nil, lan4),
		table(nftables.TableFamilyIPv6, []nftRule{
			rule(icmpv6Type(135, "nd-neighbor-solicit"), ret),
			rule(icmpv6Type(136, "nd-neighbor-advert"), ret),
			rule(daddr(multicast), ret),
		}, lan6),
	}
}

func (s *stage) set(p LinkParams) {
	s.delay.Store(int64(p.Delay))
	s.loss.Store(math.Float64bits(p.Loss))
}

func (s *stage) params() LinkParams {
	return LinkParams{Delay: time.Duration(s.delay.Load()), Loss: math.Float64frombits(s.loss.Load())}
}

// read takes packets from the kernel in arrival order.
func (s *stage) read() {
	defer s.wg.Done()
	_ = s.q.receive(func(id uint32) {
		if loss := math.Float64frombits(s.loss.Load()); loss > 0 && s.rng.Float64() < loss {
			s.dropped.Add(1)
			_ = s.q.verdict(id, nfDrop)
			return
		}
		now := time.Now()
		due := now.Add(time.Duration(s.delay.Load()))
		if due.Before(s.lastDue) {
			due = s.lastDue // no overtaking
		}
		s.lastDue = due
		select {
		case s.fifo <- held{id, due}:
		case <-s.stop:
		}
	})
}

// release accepts each packet at its due time.
func (s *stage) release() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var h held
		select {
		case h = <-s.fifo:
		case <-s.stop:
			return
		}
		if d := time.Until(h.due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
		_ = s.q.verdict(h.id, nfAccept)
	}
}

// close stops the stage. Packets still held are dropped by the kernel when
// the socket goes away.
func (s *stage) close() error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		err = s.q.close()
		s.wg.Wait()
	})
	return err
}
