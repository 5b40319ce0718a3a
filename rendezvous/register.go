package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// Registration keeps a name registered at a server and delivers, through
// Next, one PeerInfo per dialer. If the control connection drops (a server
// restart, a network change) it reconnects from the same local port with a
// jittered, capped exponential backoff and registers the name again.
type Registration struct {
	server string
	local  netip.AddrPort
	name   string
	cands  []netip.AddrPort
	cfg    *clientConfig
	log    *slog.Logger

	peers  chan PeerInfo
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the run loop ends

	mu       sync.Mutex
	cur      *controlConn
	observed netip.AddrPort
	class    NATClass // measured at the last registration (WithNATCheck)
	err      error    // why the registration ended, if not by Close

	// resume is the server's RESUME-TOKEN from the last registration,
	// presented when registering again (establish runs one at a time).
	resume    [resumeSize]byte
	hasResume bool
}

// Register registers name at the server at address server, connecting from
// local (the peer's reused port; port 0 lets the kernel choose), with our
// host candidates. ctx bounds this first registration only; the
// registration then lives until Close. While the server cannot be reached,
// or the connection breaks before the answer (a server restart), Register
// retries with the backoff of [WithBackoff] until ctx ends. A name held by
// another listener gives an error matching ErrNameTaken at once; other
// refusals are *ServerError; an invalid option gives an error matching
// ErrInvalidOption before anything is sent.
func Register(ctx context.Context, server string, local netip.AddrPort, name string, candidates []netip.AddrPort, opts ...ClientOption) (*Registration, error) {
	cfg := newClientConfig(opts)
	if cfg.err != nil {
		return nil, fmt.Errorf("rendezvous: register %q at %s: %w", name, server, cfg.err)
	}
	if err := checkWireName(name); err != nil {
		return nil, err
	}
	if err := cfg.checkOwnerName(name); err != nil {
		return nil, fmt.Errorf("rendezvous: register %q at %s: %w", name, server, err)
	}
	r := &Registration{
		server: server, local: local, name: name, cands: candidates, cfg: cfg,
		log:   cfg.log.With("server", server, "name", name),
		peers: make(chan PeerInfo, 64),
		done:  make(chan struct{}),
	}
	// Keep ctx's values but not its cancellation: the registration outlives it.
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	type registered struct {
		c   *controlConn
		obs netip.AddrPort
	}
	reg, err := retrying(ctx, cfg, r.log, func(ctx context.Context) (registered, error) {
		c, obs, err := r.establish(ctx)
		return registered{c, obs}, err
	})
	c, obs := reg.c, reg.obs
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("rendezvous: register %q at %s: %w", name, server, err)
	}
	r.cur, r.observed = c, obs
	go r.run(c)
	return r, nil
}

// establish connects and registers once, within ctx (callers give it the
// request timeout).
func (r *Registration) establish(ctx context.Context) (*controlConn, netip.AddrPort, error) {
	c, err := dialControl(ctx, r.server, r.local, r.cfg)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	req := &message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: r.name, Candidates: r.cands,
		Resume: r.resume, HasResume: r.hasResume}
	var resp *message
	if r.cfg.natCheck {
		var class NATClass
		resp, class, err = c.checkedRequest(ctx, r.server, r.local.Addr(), req) // quickcheck.go
		// Set before any peer info can arrive: the server pairs only once
		// it has this class (classupdate.go).
		r.mu.Lock()
		r.class = class
		r.mu.Unlock()
	} else {
		resp, err = c.request(ctx, req)
	}
	if err != nil {
		c.Close()
		return nil, netip.AddrPort{}, err
	}
	r.resume, r.hasResume = resp.Resume, resp.HasResume
	return c, resp.Mapped, nil
}

// Observed is our endpoint as the server saw it at the last registration.
func (r *Registration) Observed() netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.observed
}

// Class is the NAT class of our local port as measured at the last
// registration ([WithNATCheck]; "not measured" without it).
func (r *Registration) Class() NATClass {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.class
}

// Next returns the next dialer's PeerInfo (we are the controlled side). It
// keeps working across reconnections; after Close it fails with an error
// matching net.ErrClosed. If reconnecting cannot get the name back, Next
// fails with why: an error matching ErrNameTaken when another listener
// holds the name (see the package doc on resumption), or ErrUnauthorized
// when the server refuses our owner proof. Call it promptly: once 64 peer infos wait
// undelivered, the control connection stops being read, and the server
// eventually drops it as dead.
func (r *Registration) Next(ctx context.Context) (PeerInfo, error) {
	select {
	case p := <-r.peers:
		return p, nil
	default:
	}
	select {
	case p := <-r.peers:
		return p, nil
	case <-ctx.Done():
		return PeerInfo{}, ctx.Err()
	case <-r.done:
		return PeerInfo{}, r.endErr()
	}
}

// Close unregisters (by closing the control connection) and stops Next.
func (r *Registration) Close() error {
	r.cancel()
	r.mu.Lock()
	c := r.cur
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
	<-r.done
	return nil
}

func (r *Registration) run(c *controlConn) {
	defer close(r.done)
	for {
		r.serve(c)
		c.Close()
		if r.ctx.Err() != nil {
			return
		}
		if c = r.reconnect(); c == nil {
			return
		}
	}
}

// serve delivers peer infos until the connection ends.
func (r *Registration) serve(c *controlConn) {
	for {
		select {
		case msg := <-c.in:
			switch {
			case msg.Type.Method == methodPeerInfo && msg.Type.Class == stun.ClassIndication:
				pi, err := peerInfoFrom(msg, roleControlled)
				if err != nil {
					r.log.Info("bad peer info ignored", "err", err)
					continue
				}
				pi.LocalClass = r.Class()
				r.log.Debug("peer info", "candidates", pi.Candidates, "rtt", msg.RTT, "delay", msg.Delay)
				select {
				case r.peers <- pi:
				case <-r.ctx.Done():
					return
				}
			case msg.Type.Method == methodCancel && msg.Type.Class == stun.ClassIndication:
				if msg.HasTag && r.cfg.onCancel != nil { // cancel_client.go
					r.cfg.onCancel(msg.Tag)
				}
			case msg.Type.Method == methodGoodbye:
				r.log.Info("server said goodbye; reconnecting", "err", msg.serverError())
				return
			default:
				r.log.Debug("unexpected message ignored", "type", msg.Type.String())
			}
		case <-c.dead:
			r.log.Info("control connection lost; reconnecting", "err", c.err)
			return
		case <-r.ctx.Done():
			return
		}
	}
}

// reconnect retries until registered again or closed. A 409 is retried
// for a bounded time (reconnectVerdict): our resume token makes the server
// hand us the name from our own stale connection at once, so a lasting 409
// means another listener holds it.
func (r *Registration) reconnect() *controlConn {
	var takenSince time.Time
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(backoff(attempt, r.cfg.backoffMin, r.cfg.backoffMax))
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return nil
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.requestTimeout)
		c, obs, err := r.establish(ctx)
		cancel()
		if err == nil {
			r.mu.Lock()
			if r.ctx.Err() != nil { // closed meanwhile: Close did not see c
				r.mu.Unlock()
				c.Close()
				return nil
			}
			r.cur, r.observed = c, obs
			r.mu.Unlock()
			r.log.Info("registered again", "attempt", attempt+1, "observed", obs.String())
			return c
		}
		if final := r.reconnectVerdict(err, &takenSince); final != nil {
			r.fail(final)
			return nil
		}
		if errors.Is(err, ErrNameTaken) {
			r.log.Info("name still held (our previous connection?); retrying", "attempt", attempt+1)
		} else {
			r.log.Info("reconnect failed; retrying", "attempt", attempt+1, "err", err)
		}
	}
}

// backoff is "equal jitter": half the exponential delay plus a random part
// of the other half, so many listeners cut by one server restart do not
// come back in lockstep.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 30 {
		d = min(lo<<attempt, hi)
	}
	return d/2 + rand.N(d/2+1)
}
