package punch

import (
	"errors"
	"net"
	"sync"
	"time"
)

// earlyConn lets the controlling side start the secure link's handshake
// before the punch has picked a connection: what the handshake writes
// first (in code mode the CPace share, then the TLS ClientHello) is
// buffered and goes out behind the nominating hello (Session.early), so
// the TLS round trip overlaps the hello's. Reads wait for attach; later
// writes go to the attached connection.
type earlyConn struct {
	mu       sync.Mutex
	pre      []byte
	c        stream
	err      error // set by fail, or Close before attach
	attached chan struct{}
	deadline struct{ r, w time.Time }
}

var errEarlyClosed = errors.New("punch: secure handshake ended before the punch")

func newEarlyConn() *earlyConn { return &earlyConn{attached: make(chan struct{})} }

// snapshot is Session.early: what the handshake has written so far.
func (e *earlyConn) snapshot() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]byte(nil), e.pre...)
}

// attach hands over the punched connection, on which sent bytes of the
// buffer already went out; the rest is written now.
func (e *earlyConn) attach(c stream, sent int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	e.c = c
	_ = c.SetReadDeadline(e.deadline.r)
	_ = c.SetWriteDeadline(e.deadline.w)
	close(e.attached)
	if sent < len(e.pre) {
		_, err := c.Write(e.pre[sent:])
		return err
	}
	return nil
}

// fail ends a handshake whose punch failed.
func (e *earlyConn) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil && e.err == nil {
		e.err = err
		close(e.attached)
	}
}

func (e *earlyConn) conn() (stream, error) {
	<-e.attached
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c, e.err
}

func (e *earlyConn) Read(p []byte) (int, error) {
	c, err := e.conn()
	if err != nil {
		return 0, err
	}
	return c.Read(p)
}

func (e *earlyConn) Write(p []byte) (int, error) {
	e.mu.Lock()
	if e.err != nil {
		e.mu.Unlock()
		return 0, e.err
	}
	if e.c == nil {
		e.pre = append(e.pre, p...)
		e.mu.Unlock()
		return len(p), nil
	}
	c := e.c
	e.mu.Unlock()
	return c.Write(p)
}

func (e *earlyConn) Close() error {
	e.fail(errEarlyClosed)
	e.mu.Lock()
	c := e.c
	e.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

func (e *earlyConn) CloseWrite() error {
	c, err := e.conn()
	if err != nil {
		return err
	}
	return c.CloseWrite()
}

func (e *earlyConn) LocalAddr() net.Addr {
	return e.addr(func(c stream) net.Addr { return c.LocalAddr() })
}
func (e *earlyConn) RemoteAddr() net.Addr {
	return e.addr(func(c stream) net.Addr { return c.RemoteAddr() })
}

func (e *earlyConn) addr(f func(stream) net.Addr) net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		return &net.TCPAddr{}
	}
	return f(e.c)
}

func (e *earlyConn) SetDeadline(t time.Time) error {
	e.SetReadDeadline(t)
	return e.SetWriteDeadline(t)
}

// SetReadDeadline before attach is kept for the connection; a deadline in
// the past also ends a Read waiting for attach (the handshake's context
// ended).
func (e *earlyConn) SetReadDeadline(t time.Time) error {
	e.mu.Lock()
	e.deadline.r = t
	c := e.c
	e.mu.Unlock()
	if c != nil {
		return c.SetReadDeadline(t)
	}
	if !t.IsZero() && !t.After(time.Now()) {
		e.fail(errEarlyClosed)
	}
	return nil
}

func (e *earlyConn) SetWriteDeadline(t time.Time) error {
	e.mu.Lock()
	e.deadline.w = t
	c := e.c
	e.mu.Unlock()
	if c != nil {
		return c.SetWriteDeadline(t)
	}
	return nil
}
