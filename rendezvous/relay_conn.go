package rendezvous

import (
	"bytes"
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
	rbuf   []byte // bytes read from tc ahead: rbuf[rpos:rend]
	rpos   int
	rend   int
	remain int   // payload bytes left in the current DATA frame
	skip   int   // payload bytes of a control frame left to discard
	rerr   error // sticky: io.EOF, a *RelayEndedError, ErrRelayLost, ...

	wmu     sync.Mutex
	wclosed bool
	wbroken error // a write cut a frame: the stream is unusable

	endOnce sync.Once
	ended   chan struct{} // closed when the server's END was read
	endErr  error

	onControl func(typ byte, payload []byte) error // relay_control.go; nil: control frames are skipped
}

// relayReadAhead is how much Read takes from the socket at once: several
// frame headers and their payloads per read(2) when frames are small.
const relayReadAhead = 64 << 10

func newRelayConn(tc *net.TCPConn) *RelayConn {
	return &RelayConn{tc: tc, ended: make(chan struct{})}
}

func (c *RelayConn) buffered() int { return c.rend - c.rpos }

// fill reads once from the socket into the read-ahead buffer.
func (c *RelayConn) fill() error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, relayReadAhead)
	}
	if c.rpos == c.rend {
		c.rpos, c.rend = 0, 0
	} else if c.rpos > 0 && len(c.rbuf)-c.rend < relayHeaderSize+maxEndReason+2 {
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	}
	n, err := c.tc.Read(c.rbuf[c.rend:])
	c.rend += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// need reads until n bytes are buffered; midFrame says whether the bytes
// already buffered are part of a frame (for the error).
func (c *RelayConn) need(n int) error {
	for c.buffered() < n {
		if err := c.fill(); err != nil {
			return c.readFailed(err, c.buffered() > 0)
		}
	}
	return nil
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
			want := min(len(p), c.remain)
			if c.buffered() > 0 {
				n := copy(p[:want], c.rbuf[c.rpos:c.rend])
				c.rpos += n
				c.remain -= n
				return n, nil
			}
			// Nothing read ahead: straight into p, no copy.
			n, err := c.tc.Read(p[:want])
			c.remain -= n
			if err != nil {
				err = c.readFailed(err, true)
			}
			return n, err
		}
		if c.skip > 0 {
			if c.buffered() == 0 {
				if err := c.fill(); err != nil {
					return 0, c.readFailed(err, true)
				}
			}
			n := min(c.skip, c.buffered())
			c.rpos += n
			c.skip -= n
			continue
		}
		if err := c.need(relayHeaderSize); err != nil {
			return 0, err
		}
		typ, size := relayHeader(c.rbuf[c.rpos:])
		c.rpos += relayHeaderSize
		switch {
		case typ == frameData && size > 0:
			c.remain = size
		case typ == frameEOF && size == 0:
			c.rerr = io.EOF
		case typ == frameEnd:
			if size < 2 || size > 2+maxEndReason {
				c.rerr = fmt.Errorf("rendezvous: relay: %w: END of %d bytes", errRelayFrame, size)
				continue
			}
			if err := c.need(size); err != nil {
				return 0, err
			}
			err := readEnd(bytes.NewReader(c.rbuf[c.rpos:c.rpos+size]), size)
			c.rpos += size
			c.rerr = err
			var re *RelayEndedError
			if errors.As(err, &re) {
				c.endOnce.Do(func() { c.endErr = err; close(c.ended) })
			}
		case typ >= frameControlMin && typ <= frameControlMax && size <= maxRelayControl:
			if c.onControl == nil {
				c.skip = size // nobody above uses control frames
				continue
			}
			if err := c.need(size); err != nil {
				return 0, err
			}
			payload := append([]byte(nil), c.rbuf[c.rpos:c.rpos+size]...)
			c.rpos += size
			if err := c.onControl(typ, payload); err != nil {
				return 0, err // not sticky: the path layer decides what comes next
			}
		default:
			c.rerr = fmt.Errorf("rendezvous: relay: %w: type %#x, length %d", errRelayFrame, typ, size)
		}
	}
}

// WriteTo copies the other peer's bytes to w until its EOF (io.Copy uses
// it): with a buffer of a whole frame, one Read per frame.
func (c *RelayConn) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, maxRelayFrame)
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
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

// Write frames p as DATA frames of at most 256 KiB, each in one writev.
func (c *RelayConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	written := 0
	var hdr [relayHeaderSize]byte
	for written < len(p) {
		chunk := p[written:min(len(p), written+maxRelayFrame)]
		putRelayHeader(hdr[:], frameData, len(chunk))
		bufs := net.Buffers{hdr[:], chunk}
		n, err := bufs.WriteTo(c.tc)
		if err != nil && int(n) < relayHeaderSize+len(chunk) {
			c.wbroken = c.writeFailed(err)
			return written + max(int(n)-relayHeaderSize, 0), c.wbroken
		}
		written += len(chunk)
	}
	return written, nil
}

// ReadFrom sends what it reads from r until r's EOF (io.Copy uses it): each
// read of up to 256 KiB becomes one frame, written with its header in one
// write, so a fast source makes large frames and a slow one is not held
// back to fill them. The write lock is held only while a frame is
// written, not while r blocks, so WriteControl and CloseWrite from other
// goroutines still go out.
func (c *RelayConn) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, relayHeaderSize+maxRelayFrame)
	var total int64
	for {
		c.wmu.Lock()
		err := c.writable()
		c.wmu.Unlock()
		if err != nil {
			return total, err
		}
		n, rerr := r.Read(buf[relayHeaderSize:])
		if n > 0 {
			putRelayHeader(buf, frameData, n)
			c.wmu.Lock()
			err := c.writable()
			if err == nil {
				m, werr := c.tc.Write(buf[:relayHeaderSize+n])
				if werr != nil && m < relayHeaderSize+n {
					c.wbroken = c.writeFailed(werr)
					err = c.wbroken
					total += int64(max(m-relayHeaderSize, 0))
				}
			}
			c.wmu.Unlock()
			if err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (c *RelayConn) writable() error {
	if c.wclosed {
		return &net.OpError{Op: "write", Net: "tcp", Source: c.tc.LocalAddr(), Addr: c.tc.RemoteAddr(), Err: net.ErrClosed}
	}
	return c.wbroken
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
