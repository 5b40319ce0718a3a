package punch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// The upgrade: while a Conn is relayed, both peers keep punching for a
// direct connection in the background and move the stream there when one
// verifies (pathconn.go). Each background punch is an ordinary one (hello
// verification with a session tag derived for the upgrade, the
// controlling side's nomination, the SYN budget), with its events kept
// off WithEvents.
//
// Round 0 punches on the session's own candidates from the same Endpoint,
// and starts the moment the relayed connection is made, so that its SYNs
// never pause: a pause is a window in which the peer's SYN crosses our
// NAT, whose entry still holds our last SYN's sequence number, and meets
// our listener, whose SYN-ACK the NAT then drops as invalid (and whose
// half-open connection blocks our next dials to the peer for a minute).
// The punch's rate is the kernel's SYN retransmission at the attempt
// timeout, one SYN a second per candidate by default. Only a punch that
// ends (every candidate refused, say) is followed by a pause, growing as
// in upgradePauses, and a new punch with the next derived tag k, which
// the peer reaches the same way. Round 0 lasts plan.sameTuple.
//
// A tuple still stuck then (a firewall that drops those ports, a NAT
// entry or a half-open connection that will not clear) is left alone:
// the rounds r = 1, 2, … run on fresh ports, where nothing of the old
// tuple's state can be in the way. In a round each side opens a new
// Endpoint on a port the kernel picks, learns its public mapping with a
// STUN Binding to the rendezvous server (rendezvous.BindingFrom) and
// sends it with its host candidates in a CANDIDATES frame on the relay
// leg (pathctl.go); when it holds the peer's list of the same round it
// punches it for plan.roundPunch. Rounds are numbered, so the two sides
// meet in one: each starts a round when its own timer says so or when
// the peer's CANDIDATES of that round (or a later one) arrives, whichever
// is first. Between rounds the pause grows (plan.pauses), and after
// plan.rounds rounds the Conn stays relayed: a relayed session that lasts
// hours does not punch for hours.
//
// The peer's new candidates arrive in band, through the relay server,
// which sees the path layer's frames: they get the candidate policy of
// the session's own (candpolicy.go), may only name addresses the
// rendezvous gave for the peer in the first place (a new port, never a
// new host), and their punch has the SYN budget of any other. Whatever
// they name, a connection is only used after the hello exchange proved it
// reaches the peer's punch of the same derived tag.

var upgradePauses = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}

// maxUpgradeRounds bounds the rounds on fresh ports (and a CANDIDATES
// frame's round number).
const maxUpgradeRounds = 8

// upgradePlan is the upgrade's timing.
type upgradePlan struct {
	sameTuple  time.Duration   // how long round 0 punches the session's own tuple
	roundPunch time.Duration   // how long a round on fresh ports punches
	candWait   time.Duration   // how long a round waits for the peer's candidates
	pauses     []time.Duration // before round r+1 (r ≥ 1) after round r failed; the last repeats
	rounds     int             // rounds on fresh ports, at most maxUpgradeRounds
}

// defaultUpgradePlan: ten seconds of the session's own tuple (ten SYNs
// per candidate), then up to eight ten-second rounds on fresh ports,
// the first at once and the rest 10 s, 30 s, 1 min, 2 min and 5 min
// apart: about 20 minutes in all, then the Conn stays relayed.
var defaultUpgradePlan = upgradePlan{
	sameTuple:  10 * time.Second,
	roundPunch: 10 * time.Second,
	candWait:   10 * time.Second,
	pauses:     []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute},
	rounds:     maxUpgradeRounds,
}

// bindingTimeout bounds a round's STUN Binding to the rendezvous server.
const bindingTimeout = 5 * time.Second

// upgradeTag is the session tag of the k-th punch of a session's upgrade
// round r: SHA-256("tcpunch upgrade v1" || tag || uint64(r<<32 | k))
// truncated to 16 bytes (round 0's tags are those of the first version,
// which had only that round).
func upgradeTag(tag [16]byte, r, k int) [16]byte {
	h := sha256.New()
	h.Write([]byte("tcpunch upgrade v1"))
	h.Write(tag[:])
	var kb [8]byte
	binary.BigEndian.PutUint64(kb[:], uint64(r)<<32|uint64(uint32(k)))
	h.Write(kb[:])
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// upgrader is one relayed Conn's background punching.
type upgrader struct {
	pc     *pathConn
	e      *Endpoint // the session's
	role   Role
	tag    [16]byte
	cands  []netip.AddrPort // the session's candidates the policy let through
	hosts  map[netip.Addr]bool
	policy *candPolicy
	server string // the rendezvous server: Bindings for the rounds on fresh ports
	plan   upgradePlan
	log    *slog.Logger

	mu      sync.Mutex
	peer    roundCandidates // the peer's latest CANDIDATES
	peerNew chan struct{}   // closed and replaced when peer changes
}

// startUpgrade begins the background attempts for the relayed pc, unless
// the session relays by choice (RelayAlways) or because no direct path
// can exist.
func (p *session) startUpgrade(pc *pathConn) {
	if p.relayOnly {
		return
	}
	u := &upgrader{pc: pc, e: p.e, role: p.role, tag: p.tag, policy: p.policy, hosts: map[netip.Addr]bool{},
		plan: defaultUpgradePlan, log: p.cfg.logger, peerNew: make(chan struct{})}
	if p.cfg.upgrade != nil {
		u.plan = *p.cfg.upgrade
	}
	if p.relay != nil {
		u.server = p.relay.Server
	}
	p.mu.Lock()
	for _, c := range p.order {
		if !c.self && !errors.Is(c.err, errPolicy) {
			u.cands = append(u.cands, c.addr)
			u.hosts[c.addr.Addr()] = true
		}
	}
	p.mu.Unlock()
	if len(u.cands) == 0 {
		return
	}
	e := p.e
	if !e.hold() {
		return
	}
	pc.mu.Lock()
	pc.ep = e
	pc.log = u.log
	pc.onCands = u.peerCandidates
	pc.upgraded = func(up Upgrade) {
		_, _, remote, _, _ := pc.upgradeInfo()
		e.emit(Event{Kind: EventUpgraded, Addr: remote, Elapsed: up.After, Upgrade: up,
			Detail: fmt.Sprintf("upgraded to direct after %.1f s", up.After.Seconds())})
	}
	pc.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	pc.stopUpgrade = cancel
	pc.upgradeWG.Add(1)
	go func() {
		defer pc.upgradeWG.Done()
		defer cancel()
		stop := context.AfterFunc(e.ctx, cancel)
		defer stop()
		go func() {
			select {
			case <-pc.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		u.run(ctx)
	}()
}

// peerCandidates takes the peer's CANDIDATES (from inside Read: it must
// not block). Only a later round than the last counts: a replayed or
// stale list changes nothing.
func (u *upgrader) peerCandidates(rc roundCandidates) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rc.round <= u.peer.round {
		u.log.Debug("upgrade: ignoring the peer's candidates of an old round", "round", rc.round, "latest", u.peer.round)
		return
	}
	u.peer = rc
	close(u.peerNew)
	u.peerNew = make(chan struct{})
}

// peerState is the peer's latest round and the channel that says it
// changed.
func (u *upgrader) peerState() (roundCandidates, <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.peer, u.peerNew
}

func (u *upgrader) run(ctx context.Context) {
	if u.sameTuple(ctx) || ctx.Err() != nil {
		return
	}
	if u.server == "" || u.plan.rounds == 0 {
		return
	}
	next := time.Now() // the first round on fresh ports at once
	for r := 1; r <= min(u.plan.rounds, maxUpgradeRounds); {
		if !u.waitRound(ctx, next, r) {
			return
		}
		if peer, _ := u.peerState(); peer.round > r {
			r = peer.round // the peer is ahead: meet it there
		}
		moved, jump, err := u.round(ctx, r)
		switch {
		case moved || ctx.Err() != nil:
			return
		case errors.Is(err, errUpgradeOver):
			u.log.Debug("upgrade: no further rounds", "round", r, "err", err)
			return
		case jump > r:
			r = jump
			continue
		}
		u.log.Debug("upgrade round found no direct connection", "round", r, "err", err)
		pause := u.plan.pauses[min(r-1, len(u.plan.pauses)-1)]
		next = time.Now().Add(pause)
		r++
	}
}

// errUpgradeOver: the relay leg can no longer carry CANDIDATES (it broke,
// or our direction ended on it), so no round can be agreed on.
var errUpgradeOver = errors.New("the relay leg no longer carries candidates")

// sameTuple is round 0; true when the stream moved (or the move was
// given up because the Conn is closing or our direction ended).
func (u *upgrader) sameTuple(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, u.plan.sameTuple)
	defer cancel()
	u.endWhenPeerPast(rctx, cancel, 0)
	for k := 0; ; k++ {
		if k > 0 {
			t := time.NewTimer(upgradePauses[min(k-1, len(upgradePauses)-1)])
			select {
			case <-t.C:
			case <-rctx.Done():
				t.Stop()
				return false
			}
		}
		utag := upgradeTag(u.tag, 0, k)
		c, err := u.e.Punch(rctx, Session{Candidates: u.cands, Role: u.role, Tag: utag, quiet: true})
		if err != nil {
			if rctx.Err() != nil {
				return false
			}
			u.log.Debug("upgrade attempt found no direct connection", "round", 0, "attempt", k, "err", err)
			continue
		}
		u.take(c, utag, 0)
		return true
	}
}

// endWhenPeerPast calls cancel once the peer's CANDIDATES names a round
// past r: the peer's round r is over, so is ours. It stops with ctx.
func (u *upgrader) endWhenPeerPast(ctx context.Context, cancel context.CancelFunc, r int) {
	go func() {
		for {
			peer, ch := u.peerState()
			if peer.round > r {
				cancel()
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// take hands a verified direct connection to the path layer.
func (u *upgrader) take(c *Conn, utag [16]byte, round int) {
	if c.tcp == nil || !u.pc.offer(c.tcp, utag, c.info.Method, round) {
		c.abort()
		return
	}
	u.log.Debug("upgrade: direct connection verified", "round", round, "remote", c.info.Remote)
}

// waitRound waits until next or until the peer's CANDIDATES of round r or
// later arrives; false when ctx ended first.
func (u *upgrader) waitRound(ctx context.Context, next time.Time, r int) bool {
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		peer, ch := u.peerState()
		if peer.round >= r {
			return true
		}
		select {
		case <-t.C:
			return true
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// round runs round r on a fresh port: moved when the stream moved, or
// jump, a later round the peer went on to meanwhile.
func (u *upgrader) round(ctx context.Context, r int) (moved bool, jump int, err error) {
	cfg := u.e.cfg
	cfg.events = nil // the round's Endpoint is the upgrade's business: debug logs only
	ep, err := newEndpointCfg(ctx, netip.AddrPortFrom(u.e.addr.Addr(), 0), cfg)
	if err != nil {
		return false, 0, fmt.Errorf("round %d: a fresh port: %w", r, err)
	}
	// Connections punched on ep live on after its Close.
	defer ep.Close()
	bctx, cancel := context.WithTimeout(ctx, bindingTimeout)
	b, err := rendezvous.BindingFrom(bctx, u.server, ep.Addr(), cfg.rendezvousOptions()...)
	cancel()
	if err != nil {
		return false, 0, fmt.Errorf("round %d: learning the public mapping of %v: %w", r, ep.Addr(), err)
	}
	own := append([]netip.AddrPort{unmap(b.Mapped)}, ep.hostCandidates(u.server)...)
	own = own[:min(len(own), maxRoundCandidates)]
	payload, err := marshalCandidates(r, own)
	if err != nil {
		return false, 0, fmt.Errorf("round %d: %w", r, err)
	}
	if err := u.pc.sendCandidates(payload); err != nil {
		return false, 0, fmt.Errorf("round %d: sending our candidates: %w: %w", r, errUpgradeOver, err)
	}
	u.log.Debug("upgrade: round on a fresh port", "round", r, "local", ep.Addr(), "candidates", own)

	peer, err := u.awaitPeer(ctx, r)
	if err != nil || peer.round != r {
		return false, peer.round, err
	}
	cands := u.screen(peer.cands)
	if len(cands) == 0 {
		return false, 0, fmt.Errorf("round %d: none of the peer's candidates %v may be dialed", r, peer.cands)
	}
	pctx, cancel := context.WithTimeout(ctx, u.plan.roundPunch)
	defer cancel()
	u.endWhenPeerPast(pctx, cancel, r)
	utag := upgradeTag(u.tag, r, 0)
	c, err := ep.Punch(pctx, Session{Candidates: cands, Role: u.role, Tag: utag, Self: own[:1], quiet: true})
	if err != nil {
		if peer, _ := u.peerState(); peer.round > r {
			return false, peer.round, nil
		}
		return false, 0, fmt.Errorf("round %d: %w", r, err)
	}
	u.take(c, utag, r)
	return true, 0, nil
}

// awaitPeer waits up to plan.candWait for the peer's CANDIDATES of round
// r; a later round is returned as it is (the caller jumps to it).
func (u *upgrader) awaitPeer(ctx context.Context, r int) (roundCandidates, error) {
	t := time.NewTimer(u.plan.candWait)
	defer t.Stop()
	for {
		peer, ch := u.peerState()
		if peer.round >= r {
			return peer, nil
		}
		select {
		case <-ch:
		case <-t.C:
			return roundCandidates{}, fmt.Errorf("round %d: the peer sent no candidates within %v", r, u.plan.candWait)
		case <-ctx.Done():
			return roundCandidates{}, ctx.Err()
		}
	}
}

// screen keeps the peer's candidates of a round that may be dialed: the
// session's candidate policy, and only hosts the rendezvous named for the
// peer (a new port of the same host, never a new host).
func (u *upgrader) screen(cands []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for i, a := range cands {
		switch {
		case u.policy.check(a, i) != nil:
			u.log.Debug("upgrade: the peer's candidate withheld by the candidate policy", "candidate", a)
		case !u.hosts[a.Addr()]:
			u.log.Debug("upgrade: the peer's candidate names a host the rendezvous did not", "candidate", a)
		default:
			out = append(out, a)
		}
	}
	return out
}
