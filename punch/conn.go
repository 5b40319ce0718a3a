package punch

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/punch/internal/confirm"
	"github.com/tcpunch/tcpunch/sockopt"
)

// Conn is a verified connection to the peer over one path: a punched TCP
// connection (Info().Path == PathDirect) or a stream relayed by the
// rendezvous server (PathRelay). From [Listen] and [Dial] it is the secure
// link (see [WithSecret], [WithCode]) or, with [WithInsecure], the plain
// path, and in every mode it carries end-of-stream confirmation:
// [Conn.Finish] tells a complete transfer from a lost one. The secure link
// runs on either path alike, so the relay server carries only ciphertext.
// From [Endpoint.Punch] it is the bare path. Only the application's bytes
// come out of Read. A relayed Conn keeps punching in the background and,
// when a direct connection verifies, moves its stream there without a
// byte lost or reordered ([EventUpgraded]; docs/PROTOCOL.md, "Path
// layer"); LocalAddr and RemoteAddr stay those of the relay leg.
//
// Conn deliberately does not expose what is underneath: no File,
// WriteTo, and no SyscallConn either, since io.Copy and os.File.ReadFrom
// splice straight from any syscall.Conn and so would move the link's
// ciphertext and framing instead of the application's bytes. Its ReadFrom
// (which io.Copy uses) goes through the link: each read of the source
// becomes one confirmation frame, read in place behind its header.
type Conn struct {
	nc        stream        // the path: tcp, or a *rendezvous.RelayConn
	tcp       *net.TCPConn  // the direct path's socket; nil when relayed
	link      *confirm.Conn // nil for a bare Punch result
	info      Info
	earlySent int // bytes of Session.early already on the wire behind the nomination
}

// Read reads application data; at the end of a confirmed stream it
// returns io.EOF only when the peer's stream ended cleanly and whole.
func (c *Conn) Read(p []byte) (int, error) {
	if c.link != nil {
		return c.link.Read(p)
	}
	return c.nc.Read(p)
}

// Write writes application data.
func (c *Conn) Write(p []byte) (int, error) {
	if c.link != nil {
		return c.link.Write(p)
	}
	return c.nc.Write(p)
}

// ReadFrom writes what it reads from r until r's EOF, like io.Copy(c, r)
// but in the link's frame size and without a copy between buffers.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if c.link != nil {
		return c.link.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.nc}, r)
}

// CloseWrite ends our direction of the stream (the peer reads io.EOF);
// reading goes on. On a confirmed link it sends the end-of-stream count
// and the TLS close_notify and the path's FIN follow.
func (c *Conn) CloseWrite() error {
	if c.link != nil {
		return c.link.CloseWrite()
	}
	return c.nc.CloseWrite()
}

// Close closes the connection at once. To learn whether everything
// arrived, call Finish first.
func (c *Conn) Close() error {
	if c.link != nil {
		return c.link.Close()
	}
	return c.nc.Close()
}

// LocalAddr and RemoteAddr are the path's TCP addresses: the punched
// connection's, or, relayed, our leg's and the relay server's.
func (c *Conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline, SetReadDeadline and SetWriteDeadline are those of the
// path, as for net.Conn.
func (c *Conn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// abort closes the path of a connection whose link failed: a direct one
// with an RST (see abort), a relayed one by closing the leg.
func (c *Conn) abort() {
	if c.tcp != nil {
		abort(c.tcp)
		return
	}
	_ = c.nc.Close()
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
	Path          Path                   // the path in use now: a relayed Conn that moved to a direct connection says PathDirect (and Upgrade says when)
	Elapsed       time.Duration          // Punch start → verified and nominated
	Attempts      map[netip.AddrPort]int // SYNs sent per candidate: dials, and the kernel's resends of an unanswered one
	SelfConnects  int                    // candidates or connections that turned out to be ourselves

	// Auth is how the peer was authenticated: AuthSecret, AuthCode,
	// AuthInsecure (not at all), or "" for a bare [Endpoint.Punch] result.
	Auth string
	// Handshake is how long the secure link's handshake took after the
	// punch (zero for AuthInsecure and bare punches).
	Handshake time.Duration

	// Upgrade, when Upgrade.From is set, says the Conn was relayed and its
	// stream moved to a direct connection: Path is then PathDirect, Local,
	// Remote and Method are the direct connection's, and Elapsed is still
	// the time to the relayed connection.
	Upgrade Upgrade
}

// Upgrade is the account of a relayed stream's move to a direct
// connection (docs/PROTOCOL.md, "Path layer").
type Upgrade struct {
	From  Path          // PathRelay; zero when the Conn never moved
	At    time.Time     // when the stream began to move (the controlling side's MOVE sent, the controlled side's MOVE read)
	After time.Duration // how long the stream was relayed before
	// Round is the upgrade round whose punch found the direct connection:
	// 0 on the session's own ports, r ≥ 1 the r-th round on fresh ports.
	Round int
	// ReadStall is the pause the reading application saw: from the last
	// byte read from the relay before the peer's marker to the first byte
	// read from the direct connection. It includes any pause of the peer's
	// own writing, so on a busy stream it is the move's cost and on an idle
	// one an upper bound. ReadStallMeasured is false when no byte came on
	// the direct connection within 2 s of the marker, or the peer's
	// direction had ended on the relay.
	ReadStall         time.Duration
	ReadStallMeasured bool
	// WriteStall is how long the move held our writes (the marker's write
	// on the relay and the switch).
	WriteStall time.Duration
}

// Stall is the longer of the read and the write stall.
func (u Upgrade) Stall() time.Duration { return max(u.ReadStall, u.WriteStall) }

// Info returns how the connection was made, and, for a relayed Conn
// whose stream moved since, the direct path it is on now.
func (c *Conn) Info() Info {
	i := c.info
	i.Attempts = maps.Clone(c.info.Attempts)
	if pc, ok := c.nc.(*pathConn); ok {
		if up, local, remote, method, moved := pc.upgradeInfo(); moved {
			i.Path, i.Local, i.Remote, i.Method, i.Upgrade = PathDirect, local, remote, method, up
		}
	}
	return i
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
	p.emit(Event{Kind: EventConnected, Addr: w.remote, Method: w.method, Detail: "local " + w.local.String()})
	return &Conn{nc: w.c, tcp: w.c, info: info, earlySent: w.earlySent}
}
