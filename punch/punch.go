package punch

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// rawConn is one connection the kernel completed, on its way to verification.
type rawConn struct {
	c             *net.TCPConn
	local, remote netip.AddrPort
	dialed        bool
	method        Method
	relay         *rendezvous.RelayConn // set instead of c for the relay leg (relay.go)
	earlySent     int                   // bytes of Session.early written behind the nomination
}

// stream is what verification needs of a connection, direct or relayed.
type stream interface {
	net.Conn
	CloseWrite() error
}

func (rc *rawConn) conn() stream {
	if rc.relay != nil {
		return rc.relay
	}
	return rc.c
}

// Punch is NewEndpoint + Endpoint.Punch + Close for a single punch. Every
// failure is an *[Error]; one of NewEndpoint's has Kind [ErrEndpoint].
func Punch(ctx context.Context, local netip.AddrPort, s Session, opts ...Option) (*Conn, error) {
	e, err := NewEndpoint(ctx, local, opts...)
	if err != nil {
		return nil, &Error{Kind: ErrEndpoint, Cause: err}
	}
	defer e.Close()
	return e.Punch(ctx, s)
}

// Punch dials every candidate of s from the Endpoint's port, again and again
// with jittered pauses, while the Endpoint accepts; verifies every connection
// the kernel completes; and returns the one the controlling peer nominated.
// All other connections are closed with linger 0. It returns when a
// connection is nominated, when every candidate proved useless, or when ctx
// ends, leaving no goroutine or socket behind. Every failure is an *[Error].
func (e *Endpoint) Punch(ctx context.Context, s Session) (*Conn, error) {
	start := time.Now()
	if !s.Role.valid() {
		return nil, &Error{Kind: ErrInvalidSession, Cause: fmt.Errorf("session role %v is neither controlling nor controlled", s.Role)}
	}
	p := e.newSession(s, start)
	p.setupRelay(s)
	if p.live == 0 && !p.relayPending {
		return nil, p.failure(nil)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnClose := context.AfterFunc(e.ctx, cancel)
	defer stopOnClose()
	p.ctx, p.stop = pctx, cancel // before register: accepted connections may be adopted at once
	if err := e.register(p); err != nil {
		return nil, err // an *Error
	}
	if p.hasPeerLeft() { // cancelled before it began (cancel.go)
		cancel()
	}

	for _, c := range p.order {
		if !c.dropped && !p.relayOnly {
			p.wg.Add(1)
			go p.dialLoop(c)
		}
	}
	p.startRelay()
	select {
	case <-p.won:
	case <-p.exhausted:
	case <-pctx.Done():
	}
	p.mu.Lock()
	p.ended = true
	p.mu.Unlock()
	e.unregister(p)
	cancel()
	p.wg.Wait()

	if p.winner != nil {
		if p.winner.relay != nil {
			return p.finishRelay(p.winner), nil
		}
		return p.finish(p.winner), nil
	}
	var cause error
	switch {
	case ctx.Err() != nil:
		cause = ctx.Err()
	case e.ctx.Err() != nil:
		cause = fmt.Errorf("endpoint %v closed: %w", e.addr, net.ErrClosed)
	}
	return nil, p.failure(cause)
}
