package confirm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// HalfCloser is a connection that can shut down its sending direction:
// *net.TCPConn, *tls.Conn, the seclink link.
type HalfCloser interface {
	net.Conn
	CloseWrite() error
}

// ErrIncomplete is matched (errors.Is) by every error Finish returns when
// the transfer is not known to be complete; errors.As gives the
// *IncompleteError with the byte counts.
var ErrIncomplete = errors.New("transfer incomplete")

// ErrWriteAfterClose is returned by Write after CloseWrite or Finish.
var ErrWriteAfterClose = errors.New("confirm: write after CloseWrite")

// Delivery is the outcome of a stream, counted in application bytes.
type Delivery struct {
	Sent      uint64 // bytes this side's application wrote
	Acked     uint64 // bytes the peer's application read (when PeerAcked)
	PeerAcked bool   // the peer acknowledged our end of stream

	Received     uint64 // bytes this side's application read
	PeerSent     uint64 // bytes the peer says it sent (when PeerFinished)
	PeerFinished bool   // the peer's stream ended with a matching FIN
}

// Complete reports whether everything sent was read by the peer's
// application and the peer's stream arrived whole and was read.
func (d Delivery) Complete() bool {
	return d.PeerAcked && d.Acked == d.Sent &&
		d.PeerFinished && d.Received == d.PeerSent
}

func (d Delivery) String() string {
	s := fmt.Sprintf("sent %d bytes, ", d.Sent)
	if d.PeerAcked {
		s += fmt.Sprintf("peer acknowledged %d", d.Acked)
	} else {
		s += "peer acknowledged none of it"
	}
	s += fmt.Sprintf("; received %d bytes", d.Received)
	if d.PeerFinished {
		s += fmt.Sprintf(" of %d", d.PeerSent)
	} else {
		s += ", peer's stream did not end cleanly"
	}
	return s
}

// IncompleteError says what was and was not delivered, and why.
type IncompleteError struct {
	Delivery Delivery
	Err      error // the cause: a reset, a truncated stream, a deadline ...
}

func (e *IncompleteError) Error() string {
	if e.Err == nil {
		return "transfer incomplete: " + e.Delivery.String()
	}
	return "transfer incomplete: " + e.Delivery.String() + ": " + e.Err.Error()
}

func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }
func (e *IncompleteError) Unwrap() error        { return e.Err }

// Conn is one end of a confirmed stream. Read, Write and CloseWrite may be
// called from different goroutines (one reader, one writer at a time).
type Conn struct {
	net.Conn // the underlying connection (addresses, deadlines)
	hc       HalfCloser
	br       *bufio.Reader

	wmu         sync.Mutex
	wbuf        []byte
	werr        error
	finSent     bool
	closedWrite bool

	rmu       sync.Mutex // held by the one goroutine reading frames
	remaining int        // data left in the current DATA frame (under rmu)

	mu       sync.Mutex // guards the counters and flags below
	changed  chan struct{}
	sent     uint64
	arrived  uint64 // data bytes that arrived (read or discarded)
	received uint64 // data bytes the application read
	peerFin  bool
	peerSent uint64
	ackSent  bool
	acked    bool
	ackCount uint64
	finOut   bool  // our FIN was sent (the copy of finSent for the reader)
	waiting  bool  // Finish waits for the reader to release rmu
	rerr     error // fatal stream error (sticky)
}

// New wraps c. The peer must wrap its end with New too.
func New(c HalfCloser) *Conn {
	return &Conn{Conn: c, hc: c, br: bufio.NewReaderSize(c, 64<<10), changed: make(chan struct{})}
}

// notify wakes Finish; call with mu held.
func (c *Conn) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Write sizes. Over the TLS link a write of the connection below is one
// batch of 16 KiB records (seclink's batch.go), and when relayed one relay
// frame of at most 256 KiB:
//   - writeLimit, 15 records' worth, leaves room for the records' 22-byte
//     overheads within one relay frame;
//   - readChunk makes a ReadFrom frame (header included) exactly four
//     records, where a full MaxPayload would add a fifth of 4 bytes.
const (
	writeLimit = 15 << 14
	readChunk  = 4<<14 - headerSize
)

// Write sends p as DATA frames, up to writeLimit bytes of frames per write
// of the connection below.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writableLocked(); err != nil {
		return 0, err
	}
	if c.wbuf == nil {
		c.wbuf = make([]byte, writeLimit)
	}
	total := 0
	for len(p) > 0 {
		off, took := 0, 0
		for off+headerSize < writeLimit && len(p) > took {
			n := min(len(p)-took, MaxPayload, writeLimit-off-headerSize)
			putHeader(c.wbuf[off:], frameData, n)
			copy(c.wbuf[off+headerSize:], p[took:took+n])
			off += headerSize + n
			took += n
		}
		if err := c.sendLocked(c.wbuf[:off], took); err != nil {
			return total, err
		}
		total += took
		p = p[took:]
	}
	return total, nil
}

// ReadFrom sends what it reads from r until r's EOF (io.Copy uses it): each
// read of up to readChunk bytes becomes one frame, read straight into a
// frame buffer behind its header and sent with it at once, so a slow
// source is never held back to fill a frame. The write lock is held only
// while a frame is sent, never while r blocks: the reader must be able to
// acknowledge the peer's FIN meanwhile (a --exec child that waits for its
// stdin to end before it writes depends on it).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, headerSize+readChunk)
	var total int64
	for {
		c.wmu.Lock()
		err := c.writableLocked()
		c.wmu.Unlock()
		if err != nil {
			return total, err
		}
		n, rerr := r.Read(buf[headerSize:])
		if n > 0 {
			putHeader(buf, frameData, n)
			c.wmu.Lock()
			err := c.writableLocked()
			if err == nil {
				err = c.sendLocked(buf[:headerSize+n], n)
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

func (c *Conn) writableLocked() error {
	if c.finSent {
		return ErrWriteAfterClose
	}
	return c.werr
}

// sendLocked writes frames carrying n data bytes. Call with wmu held.
func (c *Conn) sendLocked(frames []byte, n int) error {
	if _, err := c.hc.Write(frames); err != nil {
		c.werr = err
		return err
	}
	c.mu.Lock()
	c.sent += uint64(n)
	c.mu.Unlock()
	return nil
}

// CloseWrite ends this side's stream: it sends FIN with the byte count.
// The underlying half-close follows once the peer's FIN is acknowledged too.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.finSent {
		return nil
	}
	if c.werr != nil {
		return c.werr
	}
	// finOut goes first: the peer's ACK may be read before Write returns.
	c.mu.Lock()
	sent := c.sent
	c.finOut = true
	c.mu.Unlock()
	c.finSent = true
	if _, err := c.hc.Write(controlFrame(frameFin, sent)); err != nil {
		c.werr = err
		return fmt.Errorf("confirm: sending FIN: %w", err)
	}
	return c.maybeCloseWriteLocked()
}

// maybeCloseWriteLocked half-closes the underlying conn once our FIN went
// out and the peer's FIN is acknowledged. Call with wmu held.
func (c *Conn) maybeCloseWriteLocked() error {
	c.mu.Lock()
	ready := c.finSent && c.ackSent && !c.closedWrite
	c.mu.Unlock()
	if !ready {
		return nil
	}
	c.closedWrite = true
	if err := c.hc.CloseWrite(); err != nil {
		c.mu.Lock()
		done := c.acked
		c.mu.Unlock()
		if done {
			// Both ends are confirmed: the half-close is only a courtesy,
			// and a peer that already closed (EPIPE, RST) loses nothing.
			return nil
		}
		c.werr = err
		return fmt.Errorf("confirm: half-closing: %w", err)
	}
	return nil
}

// Read reads application data. It returns io.EOF only after the peer's
// FIN arrived with a count matching what was read, and then acknowledges
// it. A stream that ends any other way returns an error wrapping the cause
// (io.ErrUnexpectedEOF for a truncated stream).
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	n, err := c.read(p)
	c.rmu.Unlock()
	// A Finish that found the reader busy waits for it to let go.
	c.mu.Lock()
	if c.waiting {
		c.notify()
	}
	c.mu.Unlock()
	return n, err
}

func (c *Conn) read(p []byte) (int, error) {
	for {
		c.mu.Lock()
		eof, rerr := c.peerFin, c.rerr
		c.mu.Unlock()
		if rerr != nil {
			return 0, rerr
		}
		if eof {
			return 0, io.EOF
		}
		if c.remaining > 0 {
			n, err := c.br.Read(p[:min(len(p), c.remaining)])
			c.remaining -= n
			c.mu.Lock()
			c.arrived += uint64(n)
			c.received += uint64(n)
			c.mu.Unlock()
			if err != nil {
				return n, c.fail(err)
			}
			return n, nil
		}
		if err := c.readFrame(); err != nil {
			return 0, err
		}
	}
}

// readFrame reads one header and, for control frames, its payload; for
// DATA it sets remaining. Call with rmu held.
func (c *Conn) readFrame() error {
	h, err := readHeader(c.br)
	if err != nil {
		return c.fail(err)
	}
	if h.typ == frameData {
		c.mu.Lock()
		fin := c.peerFin
		c.mu.Unlock()
		if fin {
			return c.fail(fmt.Errorf("%w: DATA after FIN", ErrProtocol))
		}
		c.remaining = h.n
		return nil
	}
	n, err := readCount(c.br)
	if err != nil {
		return c.fail(err)
	}
	if h.typ == frameAck {
		return c.onAck(n)
	}
	return c.onFin(n)
}

func (c *Conn) onAck(n uint64) error {
	c.mu.Lock()
	if !c.finOut || c.acked || n > c.sent {
		c.mu.Unlock()
		return c.fail(fmt.Errorf("%w: unexpected ACK of %d bytes", ErrProtocol, n))
	}
	c.acked, c.ackCount = true, n
	c.notify()
	c.mu.Unlock()
	return nil
}

func (c *Conn) onFin(n uint64) error {
	c.mu.Lock()
	if c.peerFin {
		c.mu.Unlock()
		return c.fail(fmt.Errorf("%w: second FIN", ErrProtocol))
	}
	if n != c.arrived {
		arrived := c.arrived
		c.mu.Unlock()
		return c.fail(fmt.Errorf("%w: peer says it sent %d bytes, %d arrived", ErrProtocol, n, arrived))
	}
	c.peerFin, c.peerSent = true, n
	received := c.received
	c.mu.Unlock()

	// Acknowledge what the application read: all of it, since the FIN
	// count matched and only the application consumes data.
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr == nil {
		if _, err := c.hc.Write(controlFrame(frameAck, received)); err != nil {
			c.werr = err
		}
	}
	c.mu.Lock()
	c.ackSent = c.werr == nil
	c.notify()
	c.mu.Unlock()
	if c.werr != nil {
		return c.fail(fmt.Errorf("sending ACK: %w", c.werr))
	}
	return c.maybeCloseWriteLocked()
}

// fail records a fatal stream error; an EOF in the middle of the stream is
// a truncation.
func (c *Conn) fail(err error) error {
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("peer's stream ended without FIN: %w", io.ErrUnexpectedEOF)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rerr == nil {
		c.rerr = err
		c.notify()
	}
	return c.rerr
}

// Finish ends this side's stream (CloseWrite, if not done yet) and waits
// until the peer has acknowledged it and the peer's own stream has ended
// and been acknowledged. Finish reads the peer's control frames itself
// when no Read is under way, but it never consumes data: if the peer sent
// data, the application must read it to io.EOF (concurrently, or before
// Finish), or Finish waits until ctx ends. The error is nil only for a
// complete delivery; otherwise it is an *IncompleteError (errors.Is
// ErrIncomplete) with the counts.
func (c *Conn) Finish(ctx context.Context) (Delivery, error) {
	if err := c.CloseWrite(); err != nil {
		return c.result(err)
	}
	// A deadline in the past wakes a blocked pump when ctx ends.
	stop := context.AfterFunc(ctx, func() {
		c.Conn.SetReadDeadline(time.Unix(1, 0))
		c.mu.Lock()
		c.notify()
		c.mu.Unlock()
	})
	defer stop()
	defer func() {
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		done, rerr, changed := c.acked && c.ackSent, c.rerr, c.changed
		c.waiting = true
		c.mu.Unlock()
		c.wmu.Lock()
		werr := c.werr
		c.wmu.Unlock()
		switch {
		case done:
			c.awaitPeerClose(ctx)
			return c.result(nil)
		case ctx.Err() != nil:
			return c.result(ctx.Err())
		case rerr != nil:
			return c.result(rerr)
		case werr != nil:
			return c.result(werr)
		}
		if c.rmu.TryLock() {
			progress, err := c.pumpOne()
			c.rmu.Unlock()
			if err != nil && ctx.Err() != nil {
				return c.result(ctx.Err())
			}
			if progress || err != nil {
				continue
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
}

// peerCloseWait bounds how long Finish waits, once delivery is confirmed,
// for the peer to close its side.
const peerCloseWait = 2 * time.Second

// awaitPeerClose waits, bounded, until the peer's side of the underlying
// stream ends (its close_notify or FIN), which follows its FIN and ACK at
// once. Closing before that, with those bytes unread, makes the kernel
// reset the connection, and a reset discards our ACK if it is still in
// flight (lost once and awaiting retransmission): the peer would then see
// a delivery we confirmed as unconfirmed. After the peer's close a plain
// close retransmits whatever is still unacknowledged.
func (c *Conn) awaitPeerClose(ctx context.Context) {
	if !c.rmu.TryLock() {
		return // the application is reading: it drains the stream itself
	}
	defer c.rmu.Unlock()
	deadline := time.Now().Add(peerCloseWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.Conn.SetReadDeadline(deadline)
	defer c.Conn.SetReadDeadline(time.Time{})
	// Nothing but the close may follow the peer's FIN; whatever does is
	// discarded, and bounded.
	_, _ = io.CopyN(io.Discard, c.br, 1<<16)
}

// pumpOne reads one control frame on behalf of Finish. It never consumes
// DATA: that is the application's to read. It reports whether it made
// progress. Call with rmu held.
func (c *Conn) pumpOne() (bool, error) {
	c.mu.Lock()
	rerr, fin := c.rerr, c.peerFin
	c.mu.Unlock()
	if rerr != nil {
		return false, rerr
	}
	if c.remaining > 0 {
		return false, nil
	}
	if !fin {
		b, err := c.br.Peek(1)
		if err != nil {
			return false, c.fail(err)
		}
		if b[0] == frameData {
			return false, nil
		}
	}
	return true, c.readFrame()
}

func (c *Conn) result(cause error) (Delivery, error) {
	d := c.Delivery()
	if cause == nil && d.Complete() {
		return d, nil
	}
	return d, &IncompleteError{Delivery: d, Err: cause}
}

// Delivery returns the counts so far.
func (c *Conn) Delivery() Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Delivery{
		Sent: c.sent, Acked: c.ackCount, PeerAcked: c.acked,
		Received: c.received, PeerSent: c.peerSent, PeerFinished: c.peerFin,
	}
}

// Close closes the underlying connection at once.
func (c *Conn) Close() error { return c.hc.Close() }
