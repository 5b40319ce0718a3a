package punch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// Endpoint owns one reused local port: its listener, and the dispatch of
// accepted connections to the punches running on it (several at once: a
// listener serves many dialers from one port). Accepted conns are routed by
// the session tag in the verification hello.
type Endpoint struct {
	cfg      config
	addr     netip.AddrPort
	ln       *net.TCPListener // nil only with the noListen testing hook
	instance [8]byte          // in every hello we send: seeing it come back means we met ourselves
	ownAddrs []netip.Addr     // our interface addresses, when listening on the unspecified address
	// dualStack: the listener takes IPv4 and IPv6 alike, though addr may
	// say 0.0.0.0 (Go listens dual-stack there where the system can).
	dualStack bool

	ctx    context.Context // ends when the Endpoint is closed
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and the goroutines reading accepted hellos
	evMu   sync.Mutex     // serializes event callbacks

	mu       sync.Mutex
	closed   bool
	punches  map[[16]byte]*session
	finished map[[16]byte]time.Time // recently ended sessions: their late conns are refused at once
	regCh    chan struct{}          // closed and replaced whenever a punch registers

	syns      *synBucket             // budget.go: SYNs per second of all punches
	cancelled map[[16]byte]time.Time // cancel.go: sessions whose peer left before their punch began

	holds      int  // endpoint_hold.go: relayed Conns whose upgrade punches on e
	closeLater bool // closeWhenFree was called while held
}

// finishedTTL is how long a finished session's tag is remembered.
const finishedTTL = time.Minute

// NewEndpoint listens on local (port 0 picks a port) with the port-reuse
// options, so that punches can dial from the same port. An unspecified
// address (0.0.0.0, ::, or the zero AddrPort) listens dual-stack where the
// system has IPv6, and dials IPv4 and IPv6 candidates alike. ctx bounds only the setup; the Endpoint
// lives until Close.
func NewEndpoint(ctx context.Context, local netip.AddrPort, opts ...Option) (*Endpoint, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newEndpointCfg(ctx, local, cfg)
}

// newEndpointCfg is NewEndpoint with a config already made: the upgrade's
// rounds on fresh ports (upgrade.go) take their Endpoint's.
func newEndpointCfg(ctx context.Context, local netip.AddrPort, cfg config) (*Endpoint, error) {
	if !local.Addr().IsValid() {
		// Go listens dual-stack on 0.0.0.0 where the system can, and falls
		// back to IPv4 where it has no IPv6; [::] would fail there.
		local = netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())
	}
	local = unmap(local)
	e := &Endpoint{
		cfg:      cfg,
		addr:     local,
		punches:  make(map[[16]byte]*session),
		finished: make(map[[16]byte]time.Time),
		regCh:    make(chan struct{}),

		syns:      newSYNBucket(cfg.endpointSYNRate),
		cancelled: make(map[[16]byte]time.Time),
	}
	if _, err := rand.Read(e.instance[:]); err != nil {
		return nil, fmt.Errorf("punch: making instance id: %w", err)
	}
	if local.Addr().IsUnspecified() {
		addrs, err := interfaceAddrs()
		if err != nil {
			// Loopback addresses are still recognised as ours; the hello's
			// instance id catches the rest.
			cfg.logger.Debug("punch: listing interface addresses", "err", err)
		}
		e.ownAddrs = addrs
	}
	if cfg.noListen {
		if local.Port() == 0 {
			return nil, errors.New("punch: an endpoint without listener needs a fixed port")
		}
	} else {
		ln, err := sockopt.ListenConfig().Listen(ctx, "tcp", local.String())
		if err != nil {
			return nil, fmt.Errorf("punch: listening on %v: %w", local, err)
		}
		e.ln = ln.(*net.TCPListener)
		bound := ln.Addr().(*net.TCPAddr)
		e.addr = netip.AddrPortFrom(local.Addr(), uint16(bound.Port))
		e.dualStack = local.Addr().IsUnspecified() && bound.IP.To4() == nil
	}
	e.ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if e.ln != nil {
		e.wg.Add(1)
		go e.acceptLoop()
	}
	return e, nil
}

// Addr is the bound address: the real port when local had port 0.
func (e *Endpoint) Addr() netip.AddrPort { return e.addr }

// Close closes the listener and ends the punches still running on the
// Endpoint. Connections already punched live on. Close waits for the
// Endpoint's goroutines to finish.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	var err error
	if e.ln != nil {
		if cerr := e.ln.Close(); cerr != nil {
			err = fmt.Errorf("punch: closing listener on %v: %w", e.addr, cerr)
		}
	}
	e.wg.Wait()
	return err
}

func (e *Endpoint) acceptLoop() {
	defer e.wg.Done()
	for {
		c, err := e.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.ctx.Err() != nil {
				return
			}
			// Out of descriptors and similar: back off briefly, as net/http does.
			e.cfg.logger.Debug("punch: accept", "local", e.addr, "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-e.ctx.Done():
				return
			}
			continue
		}
		e.wg.Add(1)
		go e.serveAccepted(c)
	}
}

// serveAccepted reads the hello of an accepted connection and hands the
// connection to the punch whose tag it carries.
func (e *Endpoint) serveAccepted(c *net.TCPConn) {
	defer e.wg.Done()
	deadline := time.Now().Add(e.cfg.verifyTimeout)
	_ = c.SetDeadline(deadline)
	stop := interruptOnDone(e.ctx, c)
	handedOff := false
	defer func() {
		stop()
		if !handedOff {
			abort(c)
		}
	}()

	local, remote, err := endpoints(c)
	if err != nil {
		e.cfg.logger.Debug("punch: accepted connection", "local", e.addr, "err", err)
		return
	}
	if local == remote {
		// Which punch it belongs to is unknown before the hello; the dialed
		// side of the same socket is caught by its punch.
		e.emit(Event{Kind: EventSelfConnect, Addr: remote, Detail: "accepted a connection from ourselves"})
		return
	}
	h, err := readFrame(c)
	if err != nil {
		e.refuse(c, remote, err)
		return
	}
	p := e.await(h.tag, deadline)
	if p == nil || !p.adopt() {
		e.refuse(c, remote, &verifyError{reason: reasonSession, reply: true, detail: "no punch with this tag on " + e.addr.String()})
		return
	}
	handedOff = true
	stop()
	p.serveAccepted(c, remote, h)
}

// refuse reports a connection that failed verification before it reached a
// punch, and tells the peer why if it spoke our protocol.
func (e *Endpoint) refuse(c *net.TCPConn, remote netip.AddrPort, err error) {
	var ve *verifyError
	if errors.As(err, &ve) && ve.reply {
		sendReject(e.ctx, c, ve.reason)
	}
	e.emit(Event{Kind: EventRejected, Addr: remote, Err: err, Detail: "accepted connection refused"})
}

// await returns the punch registered for tag, waiting until deadline for it
// to start: the peer may learn of the session and dial a moment before our
// own Punch begins.
func (e *Endpoint) await(tag [16]byte, deadline time.Time) *session {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		e.mu.Lock()
		p := e.punches[tag]
		_, stale := e.finished[tag]
		ch := e.regCh
		e.mu.Unlock()
		if p != nil {
			return p
		}
		if stale {
			return nil
		}
		select {
		case <-ch:
		case <-t.C:
			return nil
		case <-e.ctx.Done():
			return nil
		}
	}
}

// register makes p the punch of its tag on e. Its failure is an *Error.
func (e *Endpoint) register(p *session) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return &Error{Kind: ErrTimeout, Cause: fmt.Errorf("endpoint %v: %w", e.addr, net.ErrClosed)}
	}
	if _, ok := e.punches[p.tag]; ok {
		return &Error{Kind: ErrInvalidSession, Cause: fmt.Errorf("a punch with this session tag is already running on %v", e.addr)}
	}
	now := time.Now()
	for t, at := range e.finished {
		if now.Sub(at) > finishedTTL {
			delete(e.finished, t)
		}
	}
	delete(e.finished, p.tag)
	if e.takeCancelledLocked(p.tag) { // cancel.go
		p.peerLeft = true
	}
	e.punches[p.tag] = p
	close(e.regCh)
	e.regCh = make(chan struct{})
	return nil
}

func (e *Endpoint) unregister(p *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.punches[p.tag] == p {
		delete(e.punches, p.tag)
		e.finished[p.tag] = time.Now()
	}
}
