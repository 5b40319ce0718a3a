package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

const software = "tcpunch"

// Server is a rendezvous server. Create it with [NewServer], start it
// with [Server.Serve] or [Server.ListenAndServe], stop it with
// [Server.Shutdown]. It may serve several listeners at once. It is safe
// for concurrent use.
type Server struct {
	cfg   *serverConfig
	log   *slog.Logger
	reg   *registry
	limit *connLimiter
	relay *relayHub

	// Hardening (ratelimit.go, stats.go, badlog.go, cancel.go).
	rate     *rateLimits
	stats    serverStats
	badLog   *badLog
	sessions *sessionTable

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	order     []net.Listener // for Addr: the first one still serving
	conns     map[*peerConn]struct{}
	closing   bool
	connWG    sync.WaitGroup // serving goroutines, one per connection
	pairWG    sync.WaitGroup // pairings in flight

	altStarted bool     // startAlt ran (altaddr.go)
	alt        altAddrs // the bound alternate addresses
	dialBacks  *dialBackLimiter
}

// NewServer returns a server configured by opts; it serves nothing yet.
func NewServer(opts ...ServerOption) *Server {
	cfg := newServerConfig(opts)
	return &Server{
		cfg:       cfg,
		log:       cfg.log,
		reg:       newRegistry(cfg.tracer.Listeners),
		limit:     newConnLimiter(cfg.maxConnsPerIP, cfg.maxConns, cfg.v4Bits, cfg.v6Bits),
		rate:      newRateLimits(cfg),
		badLog:    newBadLog(cfg.log),
		sessions:  newSessionTable(),
		relay:     newRelayHub(&cfg.relay, cfg.log, cfg.v4Bits, cfg.v6Bits),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*peerConn]struct{}),
		dialBacks: newDialBackLimiter(cfg),
	}
}

// Addr is the address of the first listener being served, nil if none.
// With ListenAndServe it is set once listening has started; to know the
// address beforehand (port 0), net.Listen yourself and call Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.order {
		if _, ok := s.listeners[ln]; ok {
			return ln.Addr()
		}
	}
	return nil
}

func (s *Server) keepAliveConfig() net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: s.cfg.keepAlive, Interval: s.cfg.keepAlive, Count: 3}
}

// ListenAndServe listens on the TCP address addr and serves it until
// Shutdown or Close; it then returns ErrServerClosed (or, at once, an
// error matching ErrInvalidOption). ctx bounds only the
// listen, as in net.ListenConfig. Listening goes through Go's net package,
// whose backlog follows the kernel's somaxconn, so bursts of connects are
// queued rather than refused.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if s.isClosing() {
		return ErrServerClosed
	}
	if err := s.cfg.err; err != nil {
		return fmt.Errorf("rendezvous: serving %s: %w", addr, err)
	}
	lc := net.ListenConfig{KeepAliveConfig: s.keepAliveConfig()}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("rendezvous: listening on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, and then
// returns ErrServerClosed. It closes ln on return. A server given an
// invalid option serves nothing: Serve returns an error matching
// ErrInvalidOption at once.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.cfg.err; err != nil {
		ln.Close()
		return fmt.Errorf("rendezvous: serving %v: %w", ln.Addr(), err)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.order = append(s.order, ln)
	s.mu.Unlock()
	if err := s.startAlt(ln); err != nil {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
		return err
	}
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	s.log.Info("rendezvous serving", "addr", ln.Addr().String())

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				// Out of descriptors and the like: wait rather than spin or
				// die, as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("rendezvous: accepting on %v: %w", ln.Addr(), err)
		}
		delay = 0
		s.startConn(nc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary() || errors.Is(err, os.ErrDeadlineExceeded)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, lets pairings in flight finish, sends every
// connected client a Goodbye (503) and closes its connection. Relayed
// sessions go on until they end by themselves or ctx ends (the drain
// grace); then they are ended with the reason 503. It returns when every
// connection is done, or with ctx's error if ctx ends first (the
// connections are closed then anyway).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopListening()
	if err := waitCtx(ctx, &s.pairWG); err != nil {
		s.closeConns(0, "", true)
		return fmt.Errorf("rendezvous: shutdown: waiting for pairings: %w", err)
	}
	s.closeConns(CodeShuttingDown, "server shutting down", false)
	if err := waitCtx(ctx, &s.connWG); err != nil {
		// The grace is over: relayed sessions still running are told why.
		s.closeConns(CodeShuttingDown, "server shutting down", true)
		return fmt.Errorf("rendezvous: shutdown: waiting for connections: %w", err)
	}
	s.log.Info("rendezvous shut down")
	return nil
}

// Close closes the listeners and every connection at once, without
// Goodbye messages.
func (s *Server) Close() error {
	s.stopListening()
	s.closeConns(0, "", true)
	return nil
}

func (s *Server) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	s.relay.shutdown()
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeConns closes every connection, after a Goodbye if code != 0;
// joined relay legs only when legs is set.
func (s *Server) closeConns(code int, reason string, legs bool) {
	s.mu.Lock()
	conns := make([]*peerConn, 0, len(s.conns))
	for c := range s.conns {
		if !legs && c.relayLeg() != nil {
			continue
		}
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code != 0 {
				c.goodbye(code, reason)
			}
			c.close()
		}()
	}
	wg.Wait()
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// beginPair registers a pairing in flight unless the server is closing.
func (s *Server) beginPair() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.pairWG.Add(1)
	return true
}

func (s *Server) startConn(nc net.Conn) {
	remote := addrPortOf(nc.RemoteAddr())
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(s.keepAliveConfig())
	}
	log := s.log.With("remote", remote.String())
	if ok, code := s.limit.acquire(remote.Addr()); !ok {
		s.stats.connsRefused.add()
		s.badLog.note(s.prefixOf(remote.Addr()), fmt.Sprintf("refused by the connection limit (%d)", code))
		s.traceRefusedConn(remote, refusalOf(code))
		// Off the accept loop: a slow peer must not stall accepting.
		go func() {
			c := &peerConn{s: s, nc: nc, log: log}
			c.goodbye(code, limitReason(code))
			nc.Close()
		}()
		return
	}
	c := &peerConn{s: s, nc: nc, remote: remote, log: log, closed: make(chan struct{}), accepted: time.Now()}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.limit.release(remote.Addr())
		nc.Close()
		s.traceRefusedConn(remote, RefusedShuttingDown)
		return
	}
	s.traceServedConn(c)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	go c.serve()
}

func limitReason(code int) string {
	if code == CodeCapacity {
		return "server at its connection limit"
	}
	return "too many connections from your address"
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
