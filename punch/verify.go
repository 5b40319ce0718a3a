package punch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// verdict is what became of one raw connection.
type verdict int

const (
	verdictWon   verdict = iota // nominated: the punch's result
	verdictRetry                // failed in transit; the candidate may be dialed again
	verdictDrop                 // the candidate is not our peer: ourselves, another host, or the peer refused
	verdictDone                 // the punch ended (another connection won, or the context ended)
)

// run takes one raw connection through the self-connect guard, the hello
// exchange and nomination. peer is the hello the accept dispatcher already
// read; nil for a connection we dialed, which speaks first. Unless it wins,
// the connection is closed with linger 0 before run returns.
func (p *session) run(c *net.TCPConn, peer *hello) (verdict, error) {
	local, remote, err := endpoints(c)
	if err != nil {
		abort(c)
		return p.ioVerdict(err)
	}
	if local == remote {
		abort(c)
		p.selfConnect(remote, "local and remote address are equal")
		return verdictDrop, fmt.Errorf("%v: %w", local, errSelfConnect)
	}
	rc := &rawConn{c: c, local: local, remote: remote, dialed: peer == nil}
	p.verifyBegin() // cancel.go: a cancel lets this exchange finish
	defer p.verifyEnd()
	// The verify deadline is set before the cancellation hook: the hook's
	// past deadline must win if the punch has already ended.
	_ = c.SetDeadline(time.Now().Add(p.cfg.verifyTimeout))
	stop := interruptOnDone(p.ctx, c)
	v, err := p.exchange(rc, peer)
	stop()
	if v != verdictWon {
		p.release(rc)
		abort(c)
	}
	return v, err
}

// exchange sends our hello and checks the peer's, in the order the wire
// protocol fixes: the side that dialed speaks first.
func (p *session) exchange(rc *rawConn, peer *hello) (verdict, error) {
	ours := hello{role: p.role, instance: p.e.instance, tag: p.tag}
	if rc.dialed {
		ours.flags |= flagDialed
		if p.role == RoleControlling && p.claim(rc) {
			ours.flags |= flagNominated
		}
		if _, err := rc.conn().Write(p.withEarly(rc, ours)); err != nil {
			return p.ioVerdict(fmt.Errorf("sending hello to %v: %w", rc.remote, err))
		}
		h, err := readFrame(rc.conn())
		if err != nil {
			return p.refused(rc, err)
		}
		peer = &h
	}
	method, err := p.check(*peer, rc.dialed)
	if err != nil {
		return p.refused(rc, err)
	}
	if rc.relay != nil {
		method = MethodRelay // both legs "dialed": the server, not each other
	}
	rc.method = method
	if !rc.dialed {
		if p.role == RoleControlling && p.claim(rc) {
			ours.flags |= flagNominated
		}
		if _, err := rc.conn().Write(p.withEarly(rc, ours)); err != nil {
			return p.ioVerdict(fmt.Errorf("sending hello to %v: %w", rc.remote, err))
		}
	}
	p.emit(Event{Kind: EventVerified, Addr: rc.remote, Method: method, Detail: "local " + rc.local.String()})
	if p.role == RoleControlling {
		return p.nominate(rc)
	}
	return p.awaitNomination(rc, *peer)
}

// check decides whether h comes from our peer in this session.
func (p *session) check(h hello, weDialed bool) (Method, error) {
	refuse := func(r rejectReason, detail string) (Method, error) {
		return 0, &verifyError{reason: r, reply: true, detail: detail}
	}
	switch {
	case h.instance == p.e.instance:
		return refuse(reasonSelf, "the hello carries our own instance id")
	case h.tag != p.tag:
		return refuse(reasonSession, "")
	case h.role == p.role:
		return refuse(reasonRole, "both "+p.role.String())
	case !weDialed && !h.dialed():
		return refuse(reasonMalformed, "both sides say they accepted")
	case h.nominated() && h.role != RoleControlling:
		return refuse(reasonNomination, "the controlled side nominated")
	}
	return methodOf(weDialed, h.dialed()), nil
}

// refused handles a failed hello exchange: it answers a peer that spoke our
// protocol with a reject frame and decides whether the candidate is worth
// dialing again.
func (p *session) refused(rc *rawConn, err error) (verdict, error) {
	var ve *verifyError
	var re *rejectedError
	switch {
	case errors.As(err, &ve):
		if ve.reply {
			sendReject(p.ctx, rc.conn(), ve.reason)
		}
		if ve.reason == reasonSelf {
			p.selfConnect(rc.remote, ve.detail)
			return verdictDrop, fmt.Errorf("%v: %w (%w)", rc.remote, errSelfConnect, err)
		}
		p.emit(Event{Kind: EventRejected, Addr: rc.remote, Err: err, Detail: "we refused the connection"})
		return verdictDrop, err
	case errors.As(err, &re):
		p.mu.Lock()
		p.peerRejected = true
		p.mu.Unlock()
		p.emit(Event{Kind: EventRejected, Addr: rc.remote, Err: err, Detail: "the peer refused the connection"})
		return verdictDrop, err
	}
	return p.ioVerdict(err)
}

// ioVerdict classifies a transport error: the end of the punch, or a
// connection that may be retried.
func (p *session) ioVerdict(err error) (verdict, error) {
	if p.ctx.Err() != nil {
		return verdictDone, err
	}
	return verdictRetry, err
}

func (p *session) selfConnect(remote netip.AddrPort, detail string) {
	p.mu.Lock()
	p.selfConnects++
	p.mu.Unlock()
	p.emit(Event{Kind: EventSelfConnect, Addr: remote, Detail: detail})
}

func isSelfErr(err error) bool { return errors.Is(err, errSelfConnect) }

// awaitNomination waits, on the controlled side, until the controlling peer
// nominates this connection or closes it. It reads exactly one byte, so the
// application's first bytes stay in the socket.
func (p *session) awaitNomination(rc *rawConn, peer hello) (verdict, error) {
	if peer.nominated() {
		return p.accept(rc)
	}
	_ = rc.conn().SetDeadline(time.Time{})
	// Checked after clearing the deadline: if the punch ended before, the
	// cancellation hook's deadline was just overwritten.
	if p.ctx.Err() != nil {
		return verdictDone, nil
	}
	var b [1]byte
	if _, err := io.ReadFull(rc.conn(), b[:]); err != nil {
		return p.ioVerdict(fmt.Errorf("waiting for nomination from %v: %w", rc.remote, err))
	}
	if b[0] != nominateByte {
		sendReject(p.ctx, rc.conn(), reasonNomination)
		return verdictRetry, fmt.Errorf("waiting for nomination from %v: got byte %#x", rc.remote, b[0])
	}
	return p.accept(rc)
}

// rejectLinger bounds how long a reject waits for the peer to hang up.
const rejectLinger = 500 * time.Millisecond

// sendReject tells a peer that spoke our protocol why it is refused, then
// half-closes and waits briefly for the peer to hang up: the linger-0 close
// that follows sends an RST, and an RST arriving right behind the frame can
// make the peer's read fail with "connection reset" instead of returning it.
func sendReject(ctx context.Context, c stream, r rejectReason) {
	_ = c.SetDeadline(time.Now().Add(rejectLinger))
	// After the new deadline: a cancellation that already set a past
	// deadline must not be overridden.
	if ctx.Err() != nil {
		return
	}
	if _, err := c.Write(marshalReject(r)); err != nil {
		return
	}
	_ = c.CloseWrite()
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<16))
}

// withEarly is our hello, and behind a nominating one the session's early
// bytes, recorded on rc.
func (p *session) withEarly(rc *rawConn, ours hello) []byte {
	b := ours.marshal()
	if ours.nominated() {
		b = p.appendEarly(rc, b)
	}
	return b
}

// appendEarly appends the session's early bytes to b for rc.
func (p *session) appendEarly(rc *rawConn, b []byte) []byte {
	if p.early == nil {
		return b
	}
	e := p.early()
	rc.earlySent = len(e)
	return append(b, e...)
}
