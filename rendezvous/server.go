package rendezvous

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/stun/v3"
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

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	order     []net.Listener // for Addr: the first one still serving
	conns     map[*sconn]struct{}
	closing   bool
	connWG    sync.WaitGroup // serving goroutines, one per connection
	pairWG    sync.WaitGroup // pairings in flight
}

// NewServer returns a server configured by opts; it serves nothing yet.
func NewServer(opts ...ServerOption) *Server {
	cfg := newServerConfig(opts)
	return &Server{
		cfg:       cfg,
		log:       cfg.log,
		reg:       newRegistry(),
		limit:     newConnLimiter(cfg.maxConnsPerIP, cfg.maxConns),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*sconn]struct{}),
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
// Shutdown or Close; it then returns ErrServerClosed. ctx bounds only the
// listen, as in net.ListenConfig. Listening goes through Go's net package,
// whose backlog follows the kernel's somaxconn, so bursts of connects are
// queued rather than refused.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if s.isClosing() {
		return ErrServerClosed
	}
	lc := net.ListenConfig{KeepAliveConfig: s.keepAliveConfig()}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("rendezvous: listening on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, and then
// returns ErrServerClosed. It closes ln on return.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.order = append(s.order, ln)
	s.mu.Unlock()
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
// connected client a Goodbye (503) and closes its connection. It returns
// when every connection is done, or with ctx's error if ctx ends first (the
// connections are closed then anyway).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopListening()
	if err := waitCtx(ctx, &s.pairWG); err != nil {
		s.closeConns(0, "")
		return fmt.Errorf("rendezvous: shutdown: waiting for pairings: %w", err)
	}
	s.closeConns(CodeShuttingDown, "server shutting down")
	if err := waitCtx(ctx, &s.connWG); err != nil {
		return fmt.Errorf("rendezvous: shutdown: waiting for connections: %w", err)
	}
	s.log.Info("rendezvous shut down")
	return nil
}

// Close closes the listeners and every connection at once, without
// Goodbye messages.
func (s *Server) Close() error {
	s.stopListening()
	s.closeConns(0, "")
	return nil
}

func (s *Server) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
}

// closeConns closes every connection, after a Goodbye if code != 0.
func (s *Server) closeConns(code int, reason string) {
	s.mu.Lock()
	conns := make([]*sconn, 0, len(s.conns))
	for c := range s.conns {
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
		log.Warn("connection refused by limit", "code", code)
		// Off the accept loop: a slow peer must not stall accepting.
		go func() {
			c := &sconn{s: s, nc: nc, log: log}
			c.goodbye(code, limitReason(code))
			nc.Close()
		}()
		return
	}
	c := &sconn{s: s, nc: nc, remote: remote, log: log, closed: make(chan struct{})}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.limit.release(remote.Addr())
		nc.Close()
		return
	}
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

// sconn is the server side of one client connection.
type sconn struct {
	s      *Server
	nc     net.Conn
	remote netip.AddrPort // observed endpoint
	log    *slog.Logger

	wmu  sync.Mutex
	wbuf stun.Message // encoding buffer, guarded by wmu

	mu      sync.Mutex
	role    byte // 0, roleControlled (a listener) or roleControlling (a dialer)
	name    string
	cands   []netip.AddrPort
	pings   map[[stun.TransactionIDSize]byte]pendingPing
	lastRTT time.Duration
	ka      *time.Timer

	closed    chan struct{}
	closeOnce sync.Once
}

type pendingPing struct {
	sent time.Time
	ch   chan time.Duration
}

func (c *sconn) serve() {
	defer c.s.connWG.Done()
	defer c.close()
	cfg := c.s.cfg
	buf := make([]byte, 0, 256)
	// A small read buffer: one read syscall per message instead of three
	// (first byte, rest of the header, body), at 512 bytes per connection
	// (an idle listener holds about 12 KiB in all; BENCHMARKS.md).
	r := bufio.NewReaderSize(c.nc, 512)
	first := true
	for {
		// Waiting for a message may take long (an idle listener), but once
		// its first byte is in, the rest must follow within the read
		// timeout: a client dribbling a header is cut.
		wait := cfg.idleTimeout
		if first {
			wait = cfg.readTimeout
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(wait))
		inMsg := false
		raw, err := readFrame(r, buf, cfg.maxMessage, func() {
			inMsg = true
			_ = c.nc.SetReadDeadline(time.Now().Add(cfg.readTimeout))
		})
		if err != nil {
			c.readFailed(err, first, inMsg)
			return
		}
		first = false
		buf = raw[:0]
		msg, unknown, err := decodeMessage(raw)
		if err != nil {
			c.log.Info("closing connection: malformed message", "err", err)
			if t, txid := headerOf(raw); t.Class == stun.ClassRequest {
				_ = c.send(errorResponse(&message{Type: t, TxID: txid}, CodeBadRequest, err.Error()))
			}
			return
		}
		c.handle(msg, unknown)
	}
}

func (c *sconn) readFailed(err error, first, inMsg bool) {
	var hdrErr *headerError
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded) && inMsg:
		c.log.Info("closing connection: message not completed within the read timeout")
	case errors.Is(err, os.ErrDeadlineExceeded) && first:
		c.log.Info("closing connection: no message within the read timeout")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing connection: idle timeout")
		c.goodbye(CodeIdleTimeout, "idle timeout")
	case errors.As(err, &hdrErr):
		c.log.Info("closing connection: unreadable message", "err", err)
		if t, txid := headerOf(hdrErr.hdr[:]); t.Class == stun.ClassRequest {
			_ = c.send(errorResponse(&message{Type: t, TxID: txid}, CodeBadRequest, err.Error()))
		}
	case errors.Is(err, errNotSTUN), errors.Is(err, errMalformed):
		c.log.Info("closing connection: not a STUN stream", "err", err)
	case errors.Is(err, net.ErrClosed):
		// closed by the server
	default:
		c.log.Debug("closing connection: read failed", "err", err)
	}
}

func (c *sconn) handle(msg *message, unknown []stun.AttrType) {
	switch msg.Type.Class {
	case stun.ClassRequest:
		if len(unknown) > 0 {
			c.log.Info("request with unknown comprehension-required attributes", "method", msg.Type.Method.String(), "attrs", unknown)
			resp := errorResponse(msg, CodeUnknownAttribute, "Unknown Attribute")
			resp.UnknownIn = unknown
			_ = c.send(resp)
			return
		}
		switch msg.Type.Method {
		case stun.MethodBinding:
			// Exactly what any STUN server answers: the source address,
			// XOR-encoded, and FINGERPRINT if the request carried one.
			_ = c.send(&message{Type: stun.BindingSuccess, TxID: msg.TxID, Mapped: c.remote, Software: software, Fingerprnt: msg.Fingerprnt})
		case methodRegister:
			c.register(msg)
		case methodConnect:
			c.connect(msg)
		case methodPing:
			_ = c.send(&message{Type: stun.NewType(methodPing, stun.ClassSuccessResponse), TxID: msg.TxID})
		default:
			c.log.Info("request with unknown method", "method", msg.Type.Method.String())
			_ = c.send(errorResponse(msg, CodeBadRequest, "unknown method "+msg.Type.Method.String()))
		}
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		if msg.Type.Method == methodPing {
			c.pingAnswered(msg.TxID)
			return
		}
		c.log.Debug("unexpected response ignored", "type", msg.Type.String())
	case stun.ClassIndication:
		// A Binding indication is a STUN keepalive: nothing to do. Other
		// indications are the server's own; a client has no business
		// sending them.
		if msg.Type.Method != stun.MethodBinding {
			c.log.Debug("indication ignored", "type", msg.Type.String())
		}
	}
}

// checkFirst validates what Register and Connect share: one of them per
// connection, a name the server's rule accepts, sane candidates. On a
// failure it has answered 400 and ok is false.
func (c *sconn) checkFirst(req *message) (cands []netip.AddrPort, ok bool) {
	c.mu.Lock()
	role := c.role
	c.mu.Unlock()
	if role != 0 {
		// One Register or Connect per connection: a flood of peer-infos to
		// a listener then costs the attacker a connection each, which the
		// per-IP cap bounds.
		_ = c.send(errorResponse(req, CodeBadRequest, "this connection already registered or connected"))
		return nil, false
	}
	if err := c.s.cfg.nameRule(req.Name); err != nil {
		_ = c.send(errorResponse(req, CodeBadRequest, "bad name: "+err.Error()))
		return nil, false
	}
	cands, err := c.s.checkCandidates(req.Candidates)
	if err != nil {
		_ = c.send(errorResponse(req, CodeBadRequest, err.Error()))
		return nil, false
	}
	return cands, true
}

func (c *sconn) register(req *message) {
	cands, ok := c.checkFirst(req)
	if !ok {
		return
	}
	if c.s.isClosing() {
		_ = c.send(errorResponse(req, CodeShuttingDown, "server shutting down"))
		return
	}
	if !c.s.reg.claim(req.Name, c) {
		c.log.Info("registration refused: name taken", "name", req.Name)
		_ = c.send(errorResponse(req, CodeNameTaken, fmt.Sprintf("name %q is held by another listener", req.Name)))
		return
	}
	c.mu.Lock()
	c.role, c.name, c.cands = roleControlled, req.Name, cands
	c.mu.Unlock()
	select {
	case <-c.closed: // closed meanwhile: close() may have missed the name
		c.s.reg.release(req.Name, c)
		return
	default:
	}
	c.log.Info("registered", "name", req.Name, "candidates", len(cands))
	_ = c.send(&message{Type: stun.NewType(methodRegister, stun.ClassSuccessResponse), TxID: req.TxID, Mapped: c.remote, Name: req.Name})
	c.startKeepAlive()
}

func (c *sconn) connect(req *message) {
	cands, ok := c.checkFirst(req)
	if !ok {
		return
	}
	c.mu.Lock()
	c.role, c.name, c.cands = roleControlling, req.Name, cands
	c.mu.Unlock()
	if !c.s.beginPair() {
		_ = c.send(errorResponse(req, CodeShuttingDown, "server shutting down"))
		return
	}
	// Pairing waits for pings whose answers this goroutine reads: it must
	// run beside it.
	go func() {
		defer c.s.pairWG.Done()
		c.s.pair(c, req, cands)
	}()
	c.startKeepAlive()
}

func (s *Server) checkCandidates(in []netip.AddrPort) ([]netip.AddrPort, error) {
	if len(in) > s.cfg.maxCands {
		return nil, fmt.Errorf("too many candidates: %d, at most %d", len(in), s.cfg.maxCands)
	}
	out := make([]netip.AddrPort, 0, len(in))
	for _, a := range in {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !validCandidate(a) {
			return nil, fmt.Errorf("invalid candidate %v", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// send encodes msg and writes it within the write timeout. A failed write
// closes the connection: a half-written message desynchronises the stream.
func (c *sconn) send(msg *message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := msg.encode(&c.wbuf); err != nil {
		c.log.Error("encoding message", "type", msg.Type.String(), "err", err)
		return err
	}
	return c.writeLocked(c.wbuf.Raw, c.s.cfg.writeTimeout)
}

// sendRaw writes an already encoded message (pairing encodes ahead of the
// timed sends).
func (c *sconn) sendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b, c.s.cfg.writeTimeout)
}

func (c *sconn) writeLocked(b []byte, timeout time.Duration) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(b); err != nil {
		if c.closed != nil {
			go c.close()
		}
		return fmt.Errorf("writing to %v: %w", c.remote, err)
	}
	return nil
}

// goodbye tells the client why the server closes; best effort, briefly.
func (c *sconn) goodbye(code int, reason string) {
	msg := &message{Type: stun.NewType(methodGoodbye, stun.ClassIndication), TxID: newTxID(), Code: code, Reason: reason}
	var m stun.Message
	if err := msg.encode(&m); err != nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(goodbyeWriteTimeout))
	_, _ = c.nc.Write(m.Raw)
}

func (c *sconn) close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.nc.Close()
		c.mu.Lock()
		name := ""
		if c.role == roleControlled {
			name = c.name
		}
		if c.ka != nil {
			c.ka.Stop()
		}
		c.mu.Unlock()
		if name != "" {
			c.s.reg.release(name, c)
			c.log.Info("listener gone; name freed", "name", name)
		}
		c.s.limit.release(c.remote.Addr())
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
}

// startKeepAlive pings the client every keepalive period, and at once when
// the kernel has no RTT sample to pair with (the ping's answer is then the
// first one). Answers reset the idle timeout; a dead client's connection
// (and name) go at the idle timeout.
func (c *sconn) startKeepAlive() {
	first := time.Duration(0)
	if _, ok := c.kernelRTT(); ok {
		// Most dialers close within moments of pairing: an immediate
		// ping was a fifth of the server's pairing CPU (BENCHMARKS.md).
		first = c.s.cfg.keepAlive
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ka == nil {
		c.ka = time.AfterFunc(first, c.keepAliveTick)
	}
}

func (c *sconn) keepAliveTick() {
	select {
	case <-c.closed:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.pingTimeout)
	if _, err := c.ping(ctx); err != nil {
		c.log.Debug("keepalive ping unanswered", "err", err)
	}
	cancel()
	c.mu.Lock()
	c.ka.Reset(c.s.cfg.keepAlive)
	c.mu.Unlock()
}

var errTooManyPings = errors.New("too many pings in flight")

// ping sends a Ping request and returns the round-trip time of its answer.
func (c *sconn) ping(ctx context.Context) (time.Duration, error) {
	id := newTxID()
	ch := make(chan time.Duration, 1)
	req := &message{Type: stun.NewType(methodPing, stun.ClassRequest), TxID: id}
	c.mu.Lock()
	if c.pings == nil {
		c.pings = make(map[[stun.TransactionIDSize]byte]pendingPing)
	}
	if len(c.pings) >= 8 {
		c.mu.Unlock()
		return 0, errTooManyPings
	}
	c.pings[id] = pendingPing{sent: time.Now(), ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pings, id)
		c.mu.Unlock()
	}()
	if err := c.send(req); err != nil {
		return 0, err
	}
	select {
	case rtt := <-ch:
		return rtt, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *sconn) pingAnswered(id [stun.TransactionIDSize]byte) {
	c.mu.Lock()
	p, ok := c.pings[id]
	if ok {
		delete(c.pings, id)
		c.lastRTT = time.Since(p.sent)
	}
	rtt := c.lastRTT
	c.mu.Unlock()
	if ok {
		p.ch <- rtt
	}
}
