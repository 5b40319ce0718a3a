package rendezvous

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/sockopt"
)

// Synchronized start. The two peer-info messages should ARRIVE together, so
// both peers send their first SYN at the same moment: with a NAT that
// answers unsolicited SYNs with RST, punching only works while both SYNs are
// in flight at once.
//
// A message sent to a peer arrives about RTT/2 later (RTT between server and
// that peer). The server sends to the farther peer first and to the nearer
// one (RTT_far - RTT_near)/2 later; both arrive RTT_far/2 after the first
// send.

// startDelays returns how long after the pairing's start to send to A and
// to B, given their round-trip times to the server. One of them is zero.
func startDelays(rttA, rttB time.Duration) (delayA, delayB time.Duration) {
	rttA, rttB = max(rttA, 0), max(rttB, 0)
	if rttA >= rttB {
		return 0, (rttA - rttB) / 2
	}
	return (rttB - rttA) / 2, 0
}

// rttOf returns the round-trip time to a client: the kernel's smoothed RTT
// of the control connection where there is one (Linux: no extra round
// trip), else a Ping measured now, else the last Ping's.
func (s *Server) rttOf(ctx context.Context, c *peerConn) (time.Duration, string) {
	if rtt, ok := c.kernelRTT(); ok {
		return rtt, "kernel"
	}
	if rtt, err := c.ping(ctx); err == nil {
		return rtt, "ping"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastRTT, "last-ping"
}

// kernelRTT is the kernel's RTT sample of c's connection, when the server
// may use it and the kernel has one.
func (c *peerConn) kernelRTT() (time.Duration, bool) {
	if !c.s.cfg.kernelRTT {
		return 0, false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rtt, err := sockopt.RTT(sc)
	return rtt, err == nil && rtt > 0
}

// withObserved puts the observed endpoint first and drops host candidates
// equal to it (a peer without NAT reports its observed address as a host
// address).
func withObserved(observed netip.AddrPort, host []netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, 1+len(host))
	out = append(out, observed)
	for _, h := range host {
		dup := false
		for _, o := range out {
			dup = dup || o == h
		}
		if !dup {
			out = append(out, h)
		}
	}
	return out
}

func encodeBytes(msg *message) ([]byte, error) {
	var m stun.Message
	if err := msg.encode(&m); err != nil {
		return nil, err
	}
	return m.Raw, nil
}

var errDialerLeft = errors.New("the dialer left")

// pair introduces dialer d to the listener holding req.Name.
func (s *Server) pair(d *peerConn, req *message, dCands []netip.AddrPort) {
	times := pairTimes{arrived: time.Now()}
	log := s.log.With("name", req.Name, "dialer", d.remote.String())
	l := s.reg.lookup(req.Name)
	if d.auth.refused { // a refused owner proof: answered as an unknown name
		l = nil
	}
	if l == nil {
		if !d.allowUnknown(req) { // ratelimit.go
			return
		}
		log.Debug("connect to unknown name")
		_ = d.send(errorResponse(req, CodeUnknownName, fmt.Sprintf("no listener holds %q", req.Name)))
		return
	}
	if !d.allowName(req) { // ratelimit.go
		return
	}
	var tag [tagSize]byte
	_, _ = rand.Read(tag[:])
	relayToken := s.relay.issue(d.remote.Addr(), l.remote.Addr()) // zero when not relaying
	expectReports(tag, l, d)                                      // before the peer infos: a report may follow at once

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.pingTimeout)
	defer cancel()
	var rttL, rttD time.Duration
	var srcL, srcD string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); rttL, srcL = s.rttOf(ctx, l) }()
	rttD, srcD = s.rttOf(ctx, d)
	wg.Wait()
	delayL, delayD := startDelays(rttL, rttD)
	// A delay longer than the ping timeout means a bogus estimate; waiting
	// it out would only stall the dialer.
	delayL, delayD = min(delayL, s.cfg.pingTimeout), min(delayD, s.cfg.pingTimeout)

	// classupdate.go: both sides decide on the path from the classes sent
	// here, so a class announced to follow is waited for. The listener's
	// always (it registered moments ago); the dialer's only when the
	// listener's class lets it change the verdict.
	lClass := l.awaitClass()
	l.mu.Lock()
	lCands := l.cands
	l.mu.Unlock()
	var dClass NATClass
	if lClass.NeedsPeerClass() {
		dClass = d.awaitClass()
	} else {
		d.mu.Lock()
		dClass = d.class
		d.mu.Unlock()
	}
	// candpolicy.go: what each side may be told of the other's host candidates.
	dCands, lCands = s.handOut(d, l, dCands), s.handOut(l, d, lCands)
	toL, errL := encodeBytes(&message{
		Type: stun.NewType(methodPeerInfo, stun.ClassIndication), TxID: newTxID(),
		Name: req.Name, Mapped: l.remote, Candidates: withObserved(d.remote, dCands),
		Role: roleControlled, Tag: tag, HasTag: true, RelayToken: relayToken,
		HasTiming: true, RTT: rttL, Delay: delayL,
		Class: dClass, HasClass: dClass.Measured(),
	})
	toD, errD := encodeBytes(&message{
		Type: stun.NewType(methodConnect, stun.ClassSuccessResponse), TxID: req.TxID,
		Name: req.Name, Mapped: d.remote, Candidates: withObserved(l.remote, lCands),
		Role: roleControlling, Tag: tag, HasTag: true, RelayToken: relayToken,
		HasTiming: true, RTT: rttD, Delay: delayD,
		Class: lClass, HasClass: lClass.Measured(),
	})
	if errL != nil || errD != nil {
		log.Error("encoding peer info", "err", fmt.Sprint(errL, errD))
		_ = d.send(errorResponse(req, CodeServerError, "encoding peer info failed"))
		return
	}

	// cancel.go: from here on the listener hears if the dialer leaves; a
	// dialer that left already gets nothing sent on its behalf.
	if !s.sessions.open(tag, l, d) {
		s.stats.pairingsAbandoned.add()
		log.Debug("dialer left before pairing; nothing sent")
		return
	}
	start := time.Now()
	sendL := func() error {
		time.Sleep(time.Until(start.Add(delayL)))
		select {
		case <-d.closed: // the dialer left during the delay: no peer info for nobody
			return errDialerLeft
		default:
		}
		return times.sent(&times.sentL, l.sendRaw(toL))
	}
	sendD := func() error {
		time.Sleep(time.Until(start.Add(delayD)))
		return times.sent(&times.sentD, d.sendRaw(toD))
	}
	if delayL <= delayD { // the listener is the farther one: it goes first
		if err := sendL(); errors.Is(err, errDialerLeft) {
			s.stats.pairingsAbandoned.add()
			log.Debug("dialer left before its peer info was sent")
			return
		} else if err != nil {
			log.Info("listener went away during pairing", "err", err)
			_ = d.send(errorResponse(req, CodeUnknownName, fmt.Sprintf("the listener of %q went away", req.Name)))
			return
		}
		if err := sendD(); err != nil {
			log.Info("dialer went away during pairing", "err", err)
			return
		}
	} else {
		if err := sendD(); err != nil {
			log.Info("dialer went away during pairing", "err", err)
			return
		}
		if err := sendL(); errors.Is(err, errDialerLeft) {
			s.stats.pairingsAbandoned.add()
			log.Debug("dialer left before the listener's peer info was sent")
			return
		} else if err != nil {
			log.Info("listener went away during pairing", "err", err)
			return
		}
	}
	s.tracePaired(times, rttL, rttD, srcL, srcD)
	log.Info("paired", "listener", l.remote.String(),
		"rtt_listener", rttL, "rtt_src_listener", srcL, "rtt_dialer", rttD, "rtt_src_dialer", srcD,
		"delay_listener", delayL, "delay_dialer", delayD)
}
