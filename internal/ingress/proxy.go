package ingress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/pires/go-proxyproto"
)

// ProxyListener wraps ln for the PROXY protocol: a connection from an
// address in trusted must open with a PROXY header (v2, or v1), whose
// source becomes the connection's RemoteAddr; one without a header, or
// with a malformed one, is closed. A connection from any other address is
// served as it is, and closed if it opens with a header (no one else may
// claim an address).
//
// Headers are read off the accept path, each within the header timeout,
// so a silent connection never stalls accepting others. Connections
// returned by Accept have their header already read.
func ProxyListener(ln net.Listener, trusted []netip.Prefix, opts ...Option) net.Listener {
	l := &proxyListener{
		Listener: ln,
		cfg:      newConfig(opts),
		trusted:  trusted,
		ready:    make(chan net.Conn),
		errc:     make(chan error),
		done:     make(chan struct{}),
	}
	l.pending = make(chan struct{}, l.cfg.maxPending)
	go l.acceptLoop()
	return l
}

type proxyListener struct {
	net.Listener // the socket; Addr is its
	cfg          *config
	trusted      []netip.Prefix
	ready        chan net.Conn
	errc         chan error
	pending      chan struct{} // a semaphore: header reads in flight
	done         chan struct{}
	closeOnce    sync.Once
}

func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, fmt.Errorf("accepting on %v: %w", l.Addr(), net.ErrClosed)
	}
}

func (l *proxyListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

func (l *proxyListener) acceptLoop() {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			// The server's Serve decides: it backs off on a temporary
			// error and stops on the others.
			select {
			case l.errc <- err:
			case <-l.done:
				return
			}
			var t interface{ Temporary() bool }
			if errors.As(err, &t) && t.Temporary() {
				continue
			}
			return
		}
		select {
		case l.pending <- struct{}{}:
			go l.handshake(raw)
		default:
			l.cfg.count("overload")
			l.cfg.log.Warn("PROXY protocol: too many connections awaiting their header; closing one", "remote", raw.RemoteAddr().String(), "max_pending", l.cfg.maxPending)
			raw.Close()
		}
	}
}

func (l *proxyListener) handshake(raw net.Conn) {
	defer func() { <-l.pending }()
	c, result, err := l.readHeader(raw)
	l.cfg.count(result)
	if err != nil {
		l.cfg.log.Info("PROXY protocol: connection refused", "remote", raw.RemoteAddr().String(), "result", result, "err", err)
		raw.Close()
		return
	}
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// readHeader applies the policy to raw and reads its header (or the first
// bytes that show there is none) within the header timeout.
func (l *proxyListener) readHeader(raw net.Conn) (net.Conn, string, error) {
	src := addrOf(raw.RemoteAddr())
	policy := proxyproto.REJECT
	if contains(l.trusted, src) {
		policy = proxyproto.REQUIRE
	}
	pc := proxyproto.NewConn(raw, proxyproto.WithPolicy(policy), proxyproto.SetReadHeaderTimeout(l.cfg.headerTimeout))
	// A zero-length Read makes the Conn process its header now (it does
	// so at its first Read or RemoteAddr otherwise, which would be in the
	// server's accept loop), without consuming anything.
	_, err := pc.Read(nil)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return nil, "missing", fmt.Errorf("no PROXY header within %v from a trusted source", l.cfg.headerTimeout)
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		return nil, "untrusted", errors.New("a PROXY header from a source not in --proxy-protocol-from")
	case err != nil:
		return nil, "invalid", fmt.Errorf("reading the PROXY header: %w", err)
	}
	if policy == proxyproto.REJECT {
		// The bytes read to see there is no header sit in pc's buffer, so
		// pc is served; the kernel's RTT of the socket stays reachable,
		// since it is the peer's own.
		if sc, ok := raw.(syscall.Conn); ok {
			return directConn{pc, sc}, "direct", nil
		}
		return pc, "direct", nil
	}
	h := pc.ProxyHeader()
	if h == nil {
		return nil, "missing", errors.New("no PROXY header from a trusted source")
	}
	if h.Command.IsLocal() {
		return pc, "local", nil // the balancer's own connection (a health check)
	}
	if _, ok := h.SourceAddr.(*net.TCPAddr); !ok {
		return nil, "invalid", fmt.Errorf("PROXY header for %v (%v), not TCP", h.SourceAddr, h.TransportProtocol)
	}
	return pc, "ok", nil
}

// directConn is a connection from an untrusted source (no header): its
// socket's peer is the client itself, so it offers the socket (for the
// kernel's RTT). A proxied connection does not: its kernel RTT would be the
// balancer's.
type directConn struct {
	*proxyproto.Conn
	sc syscall.Conn
}

func (c directConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}
