package rendezvous

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v3"
)

type relayState uint8

const (
	relayIssued   relayState = iota // a token, no leg yet
	relayPending                    // one leg waits for the other
	relayJoined                     // both legs joined: spliced
	relayEnded                      // over (or abandoned); the token is used up
	relayReleased                   // its slots are given back
)

// relaySession is one token's session: issued at a pairing, joined by two
// legs, spliced until an EOF each way, a limit, or a broken leg.
type relaySession struct {
	hub    *relayHub
	token  RelayToken
	log    *slog.Logger
	want   [2]netip.Prefix // where each role's leg must come from: its control connection's source
	joined chan struct{}   // closed by the second leg once both are answered
	done   chan struct{}   // closed when the session is over and its legs closed
	reqs   [2]*message     // the legs' Relay requests, answered at the join (set in join, under hub.mu)
	peek   [2]*legPeek     // the first leg's watch (set in join, under hub.mu)

	// Guarded by hub.mu.
	expires time.Time
	legs    [2]*peerConn // 0 controlling, 1 controlled
	sources []netip.Prefix
	state   relayState

	mu        sync.Mutex
	ending    bool
	stopping  chan struct{}
	endCode   int
	endReason string
	dirs      [2]*relayDir
	start     time.Time
	last      time.Time
	bytes     int64
}

// relayDir is one direction of a session: frames from src forwarded to dst.
type relayDir struct {
	name     string
	src, dst *net.TCPConn
	mid      bool      // a frame is being forwarded: dst must not be cut (s.mu)
	broken   bool      // dst holds part of a frame: no END can follow (s.mu)
	next     time.Time // rate limit: the earliest start of the next frame
	forwards int64
}

// legPeek watches a waiting leg: a leg sends nothing before its answer, so
// a read that returns means the peer gave up (or broke the protocol).
type legPeek struct {
	done chan struct{}
	err  error
}

func startPeek(tc *net.TCPConn) *legPeek {
	p := &legPeek{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var b [1]byte
		_, err := tc.Read(b[:])
		if err == nil {
			err = errors.New("the leg sent bytes before the relay's answer")
		}
		p.err = err
	}()
	return p
}

// stop ends the watch; ok says the leg is still good.
func (p *legPeek) stop(tc *net.TCPConn) (ok bool) {
	_ = tc.SetReadDeadline(aLongTimeAgo)
	<-p.done
	_ = tc.SetReadDeadline(time.Time{})
	return errors.Is(p.err, os.ErrDeadlineExceeded)
}

var aLongTimeAgo = time.Unix(1, 0)

// relayRequest takes a Relay request: the connection becomes a relay leg
// once the serve loop hands it over (serveLeg).
func (c *peerConn) relayRequest(req *message) {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	switch {
	case role != 0:
		_ = c.send(errorResponse(req, CodeBadRequest, "a relay leg must be a connection of its own"))
	case req.RelayToken.IsZero() || !Role(req.Role).valid():
		_ = c.send(errorResponse(req, CodeBadRequest, "a Relay request needs RELAY-TOKEN and ROLE"))
	default:
		c.legReq = req
	}
}

// legSocket is the TCP socket under a relay leg's connection: nc itself,
// or the socket of a wrapper that offers it, as a PROXY protocol connection
// does (TCPConn). The wrapper's own buffer holds nothing by then: its
// header was read, and the Relay request, read through it, is the last
// thing a client sends before the answer (serveLeg refuses more).
func legSocket(nc net.Conn) (*net.TCPConn, bool) {
	switch c := nc.(type) {
	case *net.TCPConn:
		return c, true
	case interface{ TCPConn() (*net.TCPConn, bool) }:
		return c.TCPConn()
	}
	return nil, false
}

// serveLeg runs a connection that sent a Relay request, for the rest of
// its life. r is the serve loop's reader: nothing may wait in it, since
// from the answer on the leg is read by the kernel's splice.
func (c *peerConn) serveLeg(r interface{ Buffered() int }, req *message) {
	log := c.log.With("relay", req.RelayToken.String(), "role", Role(req.Role).String())
	if r.Buffered() > 0 {
		_ = c.send(errorResponse(req, CodeBadRequest, "bytes after the Relay request before its answer"))
		return
	}
	tc, ok := legSocket(c.nc)
	if !ok {
		_ = c.send(errorResponse(req, CodeServerError, "relaying needs a TCP connection"))
		return
	}
	_ = tc.SetDeadline(time.Time{})
	role := Role(req.Role)
	s, first, rerr := c.s.relay.join(c, tc, req, role)
	if rerr != nil {
		log.Info("relay leg refused", "code", rerr.code, "reason", rerr.reason)
		_ = c.send(errorResponse(req, rerr.code, rerr.reason))
		return
	}
	c.mu.Lock()
	c.leg = s
	c.mu.Unlock()
	i := 0
	if role == RoleControlled {
		i = 1
	}
	if first {
		log.Info("relay leg waiting for its peer")
		c.awaitPartner(s, i, tc, log)
		return
	}
	s.run(i, log)
}

// awaitPartner holds the first leg until the second joins, the token
// expires, or the peer gives up.
func (c *peerConn) awaitPartner(s *relaySession, i int, tc *net.TCPConn, log *slog.Logger) {
	h := s.hub
	h.mu.Lock()
	wait := time.Until(s.expires)
	h.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	why := ""
	select {
	case <-s.joined:
		<-s.done
		return
	case <-t.C:
		why = "timeout"
	case <-s.peek[i].done:
		why = "gone"
	case <-c.closed:
		why = "closed"
	}
	h.mu.Lock()
	abandoned := s.state == relayPending
	if abandoned {
		s.state = relayEnded
	}
	h.mu.Unlock()
	if !abandoned { // the partner joined meanwhile: it runs the session
		<-s.done
		return
	}
	h.release(s)
	close(s.done)
	log.Info("relay leg abandoned", "why", why)
	if why == "timeout" {
		s.peek[i].stop(tc)
		_ = c.send(errorResponse(s.reqs[i], CodeRelayTimeout, "the other peer did not join the relay in time"))
	}
}

// run is the second leg's goroutine: it answers both legs, splices them,
// and closes both at the end. i is the second leg's index.
func (s *relaySession) run(i int, log *slog.Logger) {
	h := s.hub
	defer close(s.done)
	defer h.release(s)
	h.mu.Lock()
	legs := s.legs
	h.mu.Unlock()
	var tcs [2]*net.TCPConn
	for k, l := range legs {
		tcs[k], _ = legSocket(l.nc) // checked when the leg joined
	}
	first := 1 - i
	if !s.peek[first].stop(tcs[first]) {
		log.Info("relay session not started: the first leg went away", "err", s.peek[first].err)
		h.mu.Lock()
		s.state = relayEnded
		h.mu.Unlock()
		_ = legs[i].send(errorResponse(s.reqs[i], CodeRelayTimeout, "the other peer left the relay before the session started"))
		close(s.joined)
		return
	}
	s.stopping = make(chan struct{})
	now := time.Now()
	s.start, s.last = now, now
	s.dirs[0] = &relayDir{name: "controlling→controlled", src: tcs[0], dst: tcs[1]}
	s.dirs[1] = &relayDir{name: "controlled→controlling", src: tcs[1], dst: tcs[0]}
	// Answer both before any frame moves: a leg's first frame must not
	// reach the other leg ahead of that leg's answer.
	for k, l := range legs {
		if err := l.send(&message{Type: stun.NewType(methodRelay, stun.ClassSuccessResponse), TxID: s.reqs[k].TxID}); err != nil {
			s.end(RelayCodePeerGone, "the other peer's connection to the relay broke")
		}
		// send bounded its write with the write timeout: on a leg, that
		// deadline would cut the splice into it once the timeout passed
		// (every relayed session died after 10 s).
		_ = tcs[k].SetWriteDeadline(time.Time{})
	}
	close(s.joined)
	tracer := legs[i].s.cfg.tracer
	s.traceRelayStarted(tracer)
	log.Info("relay session started", "controlling", legs[0].remote.String(), "controlled", legs[1].remote.String())

	var wg sync.WaitGroup
	for _, d := range s.dirs {
		wg.Add(1)
		go func() { defer wg.Done(); s.pump(d) }()
	}
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); s.watch() }()
	wg.Wait()
	s.end(0, "") // stops the watch if both directions ended cleanly
	<-watchDone

	s.mu.Lock()
	code, reason := s.endCode, s.endReason
	s.mu.Unlock()
	// Each leg gets the END through the direction that writes to it,
	// unless that direction stopped inside a frame.
	var cwg sync.WaitGroup
	for k, d := range []*relayDir{s.dirs[1], s.dirs[0]} {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			tc := tcs[k]
			if code != 0 && !d.broken {
				_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = tc.Write(marshalEnd(code, reason))
			}
			closeLeg(tc)
		}()
	}
	cwg.Wait()
	s.traceRelayEnded(tracer, code)
	log.Info("relay session ended", "code", code, "reason", reason, "bytes", s.dirs[0].forwards+s.dirs[1].forwards,
		"duration", time.Since(s.start).Round(time.Millisecond))
}

// closeLeg half-closes, lets the peer read what is in flight (an END), and
// closes: closing with unread bytes would send an RST, which can destroy
// the END before the peer reads it.
func closeLeg(tc *net.TCPConn) {
	_ = tc.CloseWrite()
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(tc, 4<<20))
	_ = tc.Close()
}

// pump forwards d's frames until an EOF frame (or a clean close at a frame
// boundary), a failure, or the session's end.
func (s *relaySession) pump(d *relayDir) {
	cfg := s.hub.cfg
	var hdr [relayHeaderSize]byte
	for {
		s.mu.Lock()
		ending := s.ending
		s.mu.Unlock()
		if ending {
			return
		}
		if _, err := io.ReadFull(d.src, hdr[:]); err != nil {
			switch {
			case s.isEnding():
			case errors.Is(err, io.EOF):
				// Closed at a frame boundary: an EOF, as a FIN is in TCP.
				putRelayHeader(hdr[:], frameEOF, 0)
				_ = d.dst.SetWriteDeadline(time.Now().Add(s.hub.cfg.endGrace))
				if _, err := d.dst.Write(hdr[:]); err != nil {
					s.end(RelayCodePeerGone, "the other peer's connection to the relay broke")
				}
				_ = d.dst.SetWriteDeadline(time.Time{})
			default:
				s.end(RelayCodePeerGone, "the other peer's connection to the relay broke ("+errText(err)+")")
			}
			return
		}
		typ, n := relayHeader(hdr[:])
		if err := checkRelayHeader(typ, n); err != nil {
			s.end(RelayCodeProtocol, "a peer sent a frame the relay does not accept: "+err.Error())
			return
		}
		s.mu.Lock()
		if s.ending {
			s.mu.Unlock()
			return
		}
		s.last = time.Now()
		if cfg.maxBytes > 0 && s.bytes+int64(n) > cfg.maxBytes {
			s.endLocked(RelayCodeByteLimit, fmt.Sprintf("the session reached the relay's limit of %d bytes", cfg.maxBytes))
			s.mu.Unlock()
			return
		}
		s.bytes += int64(n)
		d.mid = true
		wait := s.reserveLocked(d, n)
		s.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.stopping:
				t.Stop()
				s.mu.Lock()
				d.mid = false // nothing of this frame reached dst
				s.mu.Unlock()
				return
			}
		}
		var err error
		if n > 0 {
			err = writeHeaderMore(d.dst, hdr[:])
		} else {
			_, err = d.dst.Write(hdr[:])
		}
		if err == nil && n > 0 {
			// Splice: *net.TCPConn.ReadFrom with an *io.LimitedReader
			// around a *net.TCPConn is splice(2) on Linux.
			_, err = io.CopyN(d.dst, d.src, int64(n))
		}
		s.mu.Lock()
		if err != nil {
			d.broken = true
			s.endLocked(RelayCodePeerGone, "the other peer's connection to the relay broke")
			s.mu.Unlock()
			return
		}
		d.mid = false
		d.forwards += int64(n)
		s.last = time.Now()
		s.mu.Unlock()
		if typ == frameEOF {
			return
		}
	}
}

func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "cut inside a frame"
	}
	return err.Error()
}

// reserveLocked paces d at the session rate: the frame may start after
// the returned wait.
func (s *relaySession) reserveLocked(d *relayDir, n int) time.Duration {
	rate := s.hub.cfg.rate
	if rate <= 0 {
		return 0
	}
	now := time.Now()
	if d.next.Before(now) {
		d.next = now
	}
	wait := d.next.Sub(now)
	d.next = d.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	return wait
}

// watch ends the session at the idle timeout or the maximum duration.
func (s *relaySession) watch() {
	cfg := s.hub.cfg
	for {
		s.mu.Lock()
		at, code := s.last.Add(cfg.idle), RelayCodeIdle
		reason := fmt.Sprintf("nothing crossed the relay for %v (idle timeout)", cfg.idle)
		if cfg.maxDuration > 0 && s.start.Add(cfg.maxDuration).Before(at) {
			at, code = s.start.Add(cfg.maxDuration), RelayCodeTimeLimit
			reason = fmt.Sprintf("the session reached the relay's time limit of %v", cfg.maxDuration)
		}
		stopping := s.stopping
		s.mu.Unlock()
		wait := time.Until(at)
		if wait <= 0 {
			s.end(code, reason)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stopping:
			t.Stop()
			return
		}
	}
}

func (s *relaySession) isEnding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ending
}

// end stops the session with code and reason for both peers (code 0: the
// clean end, both directions done). A direction inside a frame may finish
// it, within endGrace; the others stop at once.
func (s *relaySession) end(code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(code, reason)
}

func (s *relaySession) endLocked(code int, reason string) {
	if s.ending || s.stopping == nil {
		return
	}
	s.ending = true
	s.endCode, s.endReason = code, reason
	close(s.stopping)
	grace := time.Now().Add(s.hub.cfg.endGrace)
	for _, d := range s.dirs {
		if d.mid {
			_ = d.src.SetReadDeadline(grace)
			_ = d.dst.SetWriteDeadline(grace)
		} else {
			_ = d.src.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// shutdown ends a running session for a server shutdown and waits (a
// little) until the peers were told; a pending one ends when its
// connection closes.
func (s *relaySession) shutdown() {
	s.hub.mu.Lock()
	running := s.state == relayJoined
	s.hub.mu.Unlock()
	if !running {
		return
	}
	<-s.joined
	s.end(RelayCodeShutdown, "the relay server is shutting down")
	t := time.NewTimer(s.hub.cfg.endGrace + 2*time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}
