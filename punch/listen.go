package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// Listener accepts punched connections from any peer that dials its name.
// It is a [net.Listener]; Accept returns *[Conn] values.
type Listener struct {
	ep         *Endpoint
	reg        *rendezvous.Registration
	rendezvous string
	cfg        config
	conns      chan *Conn
	label      string   // the name Listen was given (the server may see another, see WithSecret)
	code       codeGate // WithCode: one success, or codeMaxFailures failures, retire the code
	final      chan *Conn
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu     sync.Mutex
	err    error // why the listener stopped, once it has
	active int   // punches running, against cfg.maxPunches
}

// Listen registers name at the rendezvous server at rendezvousAddr and
// returns a Listener for the connections punched by peers that dial it.
// One of [WithSecret], [WithCode] or [WithInsecure] is required
// ([ErrNoAuth]); a peer that fails authentication is dropped before any
// data and the listener goes on serving.
// Each dialer starts a new punch from the same local port, several at once
// if need be. The registration survives a restart of the server (the
// client reconnects and registers again). ctx bounds only the first
// registration, which retries a server that cannot be reached until ctx
// ends; Close ends the listener.
func Listen(ctx context.Context, rendezvousAddr, name string, opts ...Option) (*Listener, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	serverName, proof, err := cfg.auth.serverName(name)
	if err != nil {
		return nil, err
	}
	ep, err := NewEndpoint(ctx, cfg.localAddr, opts...)
	if err != nil {
		return nil, err
	}
	reg, err := rendezvous.Register(ctx, rendezvousAddr, ep.Addr(), serverName, ep.hostCandidates(rendezvousAddr),
		append(append(cfg.rendezvousOptions(), proof...), rendezvous.WithSessionCancelled(ep.cancelSession))...)
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("%w: %w", ErrRendezvous, err)
	}
	ep.emit(Event{Kind: EventRegistered, Addr: reg.Observed(), Detail: name})
	l := &Listener{ep: ep, reg: reg, cfg: cfg, conns: make(chan *Conn), rendezvous: rendezvousAddr, label: name, final: make(chan *Conn, 1)}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.wg.Add(1)
	go l.serve()
	return l, nil
}

func (l *Listener) serve() {
	defer l.wg.Done()
	for {
		pi, err := l.reg.Next(l.ctx)
		if err != nil {
			l.stop(err)
			return
		}
		l.ep.emit(Event{Kind: EventPeerInfo, Addr: pi.Candidates[0], Detail: describePeer(pi),
			Candidates: pi.Candidates, Observed: pi.Observed, LocalClass: pi.LocalClass, PeerClass: pi.Class})
		relay, err := sessionRelay(&l.cfg, l.rendezvous, pi)
		if err != nil {
			report(l.ctx, &l.cfg, l.reg, pi, nil, err, 0)
			l.ep.emit(Event{Kind: EventFailed, Addr: pi.Candidates[0], Err: err})
			continue
		}
		if !l.admit(pi) { // budget.go: refused through the server, not queued
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.done()
			ctx, cancel := context.WithTimeout(l.ctx, l.cfg.punchTimeout)
			defer cancel()
			start := time.Now()
			raw, err := l.ep.Punch(ctx, Session{Candidates: pi.Candidates, Role: RoleControlled, Tag: pi.Tag, Self: []netip.AddrPort{pi.Observed},
				Relay: relay, policy: policyFor(l.rendezvous, pi.Observed, pi.Candidates)})
			if l.ctx.Err() == nil { // a listener closing abandons its punches: nothing to report
				report(l.ctx, &l.cfg, l.reg, pi, raw, err, time.Since(start))
			}
			if err != nil {
				l.ep.emit(Event{Kind: EventFailed, Addr: pi.Candidates[0], Err: err})
				return
			}
			c, ok := l.secure(ctx, raw, pi)
			if !ok {
				return
			}
			select {
			case l.conns <- c:
			case <-l.ctx.Done():
				c.Close()
			}
		}()
	}
}

func (l *Listener) stop(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	l.cancel()
}

// Accept waits for the next punched, verified connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case c := <-l.final:
		return c, nil
	case <-l.ctx.Done():
	}
	select {
	case c := <-l.final:
		return c, nil
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(l.err, ErrCodeRetired) {
		return nil, l.err
	}
	if l.err == nil || errors.Is(l.err, context.Canceled) || errors.Is(l.err, net.ErrClosed) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
	return nil, fmt.Errorf("%w: %w", ErrRendezvous, l.err)
}

// Close unregisters the name, stops accepting and waits for punches in
// progress to end. Connections already returned by Accept stay open.
func (l *Listener) Close() error {
	l.stop(net.ErrClosed)
	err := l.reg.Close()
	l.ep.closeWhenFree() // relayed Conns may still punch for their upgrade on it
	l.wg.Wait()
	return err
}

// Addr is the local endpoint every punch starts from.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.ep.Addr()) }
