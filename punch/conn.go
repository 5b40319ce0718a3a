package punch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// Conn is a verified connection to the peer: a punched TCP connection
// (Info().Path == PathDirect) or a stream relayed by the rendezvous server
// (PathRelay). Either way it is a net.Conn that holds only the
// application's bytes, and CloseWrite half-closes.
type Conn struct {
	nc   stream
	tcp  *net.TCPConn // the direct path's socket; nil when relayed
	info Info
}

// Method is how the kernel made the punched connection, from our side.
type Method uint8

const (
	MethodSimultaneousOpen Method = iota + 1 // both peers dialed; the SYNs crossed
	MethodAccept                             // we accepted the peer's SYN
	MethodConnect                            // we dialed and the peer accepted
	MethodRelay                              // both peers connected to the rendezvous server's relay
)

func (m Method) String() string {
	switch m {
	case MethodSimultaneousOpen:
		return "simultaneous-open"
	case MethodAccept:
		return "accept"
	case MethodConnect:
		return "connect"
	case MethodRelay:
		return "relay"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// methodOf derives the Method from who dialed on each side.
func methodOf(weDialed, peerDialed bool) Method {
	switch {
	case weDialed && peerDialed:
		return MethodSimultaneousOpen
	case weDialed:
		return MethodConnect
	default:
		return MethodAccept
	}
}

// Info describes how a Conn was punched.
type Info struct {
	Local, Remote netip.AddrPort         // relayed: our leg's address and the relay server's
	Method        Method                 // MethodRelay when relayed
	Path          Path                   // direct or relay
	Elapsed       time.Duration          // Punch start → verified and nominated
	Attempts      map[netip.AddrPort]int // SYNs sent per candidate: dials, and the kernel's resends of an unanswered one
	SelfConnects  int                    // candidates or connections that turned out to be ourselves
}

// Info returns how the connection was made.
func (c *Conn) Info() Info {
	i := c.info
	i.Attempts = maps.Clone(c.info.Attempts)
	return i
}

func (c *Conn) Read(b []byte) (int, error)         { return c.nc.Read(b) }
func (c *Conn) Write(b []byte) (int, error)        { return c.nc.Write(b) }
func (c *Conn) Close() error                       { return c.nc.Close() }
func (c *Conn) CloseWrite() error                  { return c.nc.CloseWrite() }
func (c *Conn) LocalAddr() net.Addr                { return c.nc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.nc.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// ReadFrom lets io.Copy into the connection use the path's own copy: the
// kernel's splice(2) on a direct connection where the source allows it,
// whole relay frames on a relayed one.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.nc.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.nc}, r)
}

// WriteTo lets io.Copy out of the connection use the path's own copy (see
// ReadFrom).
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.nc.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.nc})
}

// ErrNotDirect is returned by [Conn.File] and [Conn.TCPConn] for a relayed
// connection, whose socket carries relay frames, not the stream.
var ErrNotDirect = errors.New("punch: the connection is relayed, not a direct TCP connection")

// File duplicates the socket of a direct connection (for a child process
// to own, as *net.TCPConn.File does). A relayed connection has no such
// socket: ErrNotDirect.
func (c *Conn) File() (*os.File, error) {
	if c.tcp == nil {
		return nil, ErrNotDirect
	}
	return c.tcp.File()
}

// TCPConn is the direct connection's socket, for socket options; a relayed
// connection has none (ErrNotDirect).
func (c *Conn) TCPConn() (*net.TCPConn, error) {
	if c.tcp == nil {
		return nil, ErrNotDirect
	}
	return c.tcp, nil
}

// SyscallConn is the direct connection's raw socket (syscall.Conn); a
// relayed connection has none (ErrNotDirect).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if c.tcp == nil {
		return nil, ErrNotDirect
	}
	return c.tcp.SyscallConn()
}

var _ net.Conn = (*Conn)(nil)

// aLongTimeAgo is a deadline that unblocks pending I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// interruptOnDone unblocks pending I/O on c when ctx ends, by setting a
// past deadline. Unlike the stop function of context.AfterFunc, the returned
// stop waits for a hook already running: after it returns, no past deadline
// can land on c, so a winner's cleared deadlines stay cleared.
func interruptOnDone(ctx context.Context, c interface{ SetDeadline(time.Time) error }) (stop func()) {
	var mu sync.Mutex
	stopped := false
	stopHook := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			_ = c.SetDeadline(aLongTimeAgo)
		}
	})
	return func() {
		stopHook()
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// abort closes c with linger 0: an RST instead of a FIN, so no TIME_WAIT
// keeps the 4-tuple from the next attempt between the same endpoints.
func abort(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// finish readies the winner for the application.
func (p *session) finish(w *rawConn) *Conn {
	// The deadlines of the hello exchange and of the punch's cancellation
	// must not leak into the application's stream.
	_ = w.c.SetDeadline(time.Time{})
	// Dialed attempts close abortively (see dialLoop); the application's
	// Close must flush its data with a FIN as usual.
	_ = w.c.SetLinger(-1)
	// Dialed attempts retransmit on a short fixed timer (see dialLoop); the
	// application's stream backs off as TCP should.
	if raw, err := w.c.SyscallConn(); err == nil {
		_ = sockopt.RestoreRetransmit(raw)
	}
	_ = w.c.SetNoDelay(true)
	if p.cfg.keepAlive > 0 {
		_ = w.c.SetKeepAlive(true)
		_ = w.c.SetKeepAlivePeriod(p.cfg.keepAlive)
	} else {
		_ = w.c.SetKeepAlive(false)
	}
	p.mu.Lock()
	info := Info{
		Local:        w.local,
		Remote:       w.remote,
		Method:       w.method,
		Path:         PathDirect,
		Elapsed:      p.wonAt.Sub(p.start),
		Attempts:     make(map[netip.AddrPort]int, len(p.order)),
		SelfConnects: p.selfConnects,
	}
	for _, c := range p.order {
		info.Attempts[c.addr] = c.attempts
	}
	p.mu.Unlock()
	p.e.emit(Event{Kind: EventConnected, Addr: w.remote, Method: w.method, Detail: "local " + w.local.String()})
	return &Conn{nc: w.c, tcp: w.c, info: info}
}
