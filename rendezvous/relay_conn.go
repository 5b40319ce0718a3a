package rendezvous

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// RelayConn is a peer's relay leg once both legs joined: a net.Conn whose
// bytes cross the server to the other peer. It frames what it writes
// (docs/PROTOCOL.md, "Relay frames") and unframes what it reads, so the
// application sees the other peer's byte stream, EOF when the other peer
// half-closed, and a [*RelayEndedError] when the server ended the session.
// CloseWrite half-closes as on a *net.TCPConn.
type RelayConn struct {
	tc *net.TCPConn

	rmu    sync.Mutex
	hdr    [relayHeaderSize]byte
	hdrN   int   // header bytes read so far (a deadline may cut a header)
	remain int   // payload bytes left in the current DATA frame
	skip   int   // payload bytes of a control frame left to discard
	rerr   error // sticky: io.EOF, a *RelayEndedError, ErrRelayLost, ...

	wmu     sync.Mutex
	wclosed bool
	wbroken error // a write cut a frame: the stream is unusable

	endOnce sync.Once
	ended   chan struct{} // closed when the server's END was read
	endErr  error
}

func newRelayConn(tc *net.TCPConn) *RelayConn {
	return &RelayConn{tc: tc, ended: make(chan struct{})}
}

// Read reads the other peer's bytes.
func (c *RelayConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.remain > 0 {
			n, err := c.tc.Read(p[:min(len(p), c.remain)])
			c.remain -= n
			if err != nil {
				err = c.readFailed(err, true)
			}
			return n, err
		}
		if c.skip > 0 {
			n, err := io.CopyN(io.Discard, c.tc, int64(c.skip))
			c.skip -= int(n)
			if err != nil {
				return 0, c.readFailed(err, true)
			}
			continue
		}
		n, err := io.ReadFull(c.tc, c.hdr[c.hdrN:])
		c.hdrN += n
		if err != nil {
			return 0, c.readFailed(err, c.hdrN > 0)
		}
		c.hdrN = 0
		typ, size := relayHeader(c.hdr[:])
		switch {
		case typ == frameData && size > 0:
			c.remain = size
		case typ == frameEOF && size == 0:
			c.rerr = io.EOF
		case typ == frameEnd:
			err := readEnd(c.tc, size)
			c.rerr = err
			var re *RelayEndedError
			if errors.As(err, &re) {
				c.endOnce.Do(func() { c.endErr = err; close(c.ended) })
			}
		case typ >= frameControlMin && typ <= frameControlMax && size <= maxRelayControl:
			c.skip = size // reserved for the path layer; nothing uses it yet
		default:
			c.rerr = fmt.Errorf("rendezvous: relay: %w: type %#x, length %d", errRelayFrame, typ, size)
		}
	}
}

// readFailed turns a socket error into the Read error: a deadline is
// transient; the end of the stream without EOF or END frame means the
// server went away.
func (c *RelayConn) readFailed(err error, midFrame bool) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		c.rerr = ErrRelayLost
		return c.rerr
	}
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	c.rerr = fmt.Errorf("%w (%v)", ErrRelayLost, err) // %v: not "gone" (ECONNRESET) to callers
	return c.rerr
}

// Write frames p as DATA frames of at most 64 KiB, each in one writev.
func (c *RelayConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.tc.LocalAddr(), Addr: c.tc.RemoteAddr(), Err: net.ErrClosed}
	}
	if c.wbroken != nil {
		return 0, c.wbroken
	}
	written := 0
	var hdr [relayHeaderSize]byte
	for written < len(p) {
		chunk := p[written:min(len(p), written+maxRelayFrame)]
		putRelayHeader(hdr[:], frameData, len(chunk))
		bufs := net.Buffers{hdr[:], chunk}
		n, err := bufs.WriteTo(c.tc)
		if err != nil {
			sent := max(int(n)-relayHeaderSize, 0)
			if int(n) < relayHeaderSize+len(chunk) {
				c.wbroken = c.writeFailed(err)
				return written + sent, c.wbroken
			}
		}
		written += len(chunk)
	}
	return written, nil
}

// writeFailed prefers the server's reason, when it sent one, to the
// socket error it caused.
func (c *RelayConn) writeFailed(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-c.ended:
		return c.endErr
	case <-t.C:
	}
	return fmt.Errorf("rendezvous: writing to the relay: %w", err)
}

// CloseWrite tells the other peer we send no more (it reads EOF); our side
// still reads.
func (c *RelayConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return nil
	}
	c.wclosed = true
	var hdr [relayHeaderSize]byte
	putRelayHeader(hdr[:], frameEOF, 0)
	if _, err := c.tc.Write(hdr[:]); err != nil {
		return c.writeFailed(err)
	}
	return nil
}

// Close closes the leg; the other peer reads EOF (or, with our bytes
// unread, learns that our connection broke).
func (c *RelayConn) Close() error { return c.tc.Close() }

// LocalAddr is our end of the leg.
func (c *RelayConn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr is the relay server's address, not the peer's.
func (c *RelayConn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

func (c *RelayConn) SetDeadline(t time.Time) error      { return c.tc.SetDeadline(t) }
func (c *RelayConn) SetReadDeadline(t time.Time) error  { return c.tc.SetReadDeadline(t) }
func (c *RelayConn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }

var _ net.Conn = (*RelayConn)(nil)
