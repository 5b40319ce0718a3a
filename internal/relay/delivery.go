package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// ErrIncomplete is matched by the error of a relay whose peer reset, died
// or cut the stream before it ended cleanly: bytes may have been lost. The
// error is an *IncompleteError with the counts.
var ErrIncomplete = errors.New("the stream did not end cleanly")

// IncompleteError says how far a stream got before the peer went away.
// Acked is what the peer's TCP acknowledged (Linux; -1 where unknown): the
// bytes beyond it are lost for sure, and those within it reached the
// peer's kernel, not necessarily its application.
type IncompleteError struct {
	Sent  int64 // bytes we wrote to the connection
	Acked int64 // of those, acknowledged by the peer's TCP; -1 if unknown
	Err   error // what happened
}

func (e *IncompleteError) Error() string {
	if e.Acked < 0 {
		return fmt.Sprintf("peer went away before the stream ended cleanly (%v): %d bytes sent, acknowledgement unknown", e.Err, e.Sent)
	}
	return fmt.Sprintf("peer went away before the stream ended cleanly (%v): %d bytes sent, %d acknowledged", e.Err, e.Sent, e.Acked)
}

func (e *IncompleteError) Unwrap() []error { return []error{ErrIncomplete, e.Err} }

// drainStall bounds the wait for the peer to acknowledge what we sent
// after our half-close: the wait goes on while the peer makes progress, and
// gives up after this long without any.
const drainStall = 30 * time.Second

// delivery tracks what was sent on a connection to the peer and what the
// peer's TCP acknowledged.
type delivery struct {
	conn  net.Conn
	sc    syscall.Conn // nil where the connection has no socket
	base  uint64       // bytes acknowledged before the relay began (the verification hello)
	sent  atomic.Int64
	acked atomic.Uint64 // the last count read while the connection was up: a reset may clear the kernel's
}

func newDelivery(conn net.Conn) *delivery {
	d := &delivery{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		if info, err := sockopt.Delivery(sc); err == nil {
			d.sc, d.base = sc, info.BytesAcked
		}
	}
	return d
}

// Write counts what reaches the connection.
func (d *delivery) Write(p []byte) (int, error) {
	n, err := d.conn.Write(p)
	d.sent.Add(int64(n))
	if err == nil && d.sc != nil {
		if info, ierr := sockopt.Delivery(d.sc); ierr == nil && info.BytesAcked > d.acked.Load() {
			d.acked.Store(info.BytesAcked)
		}
	}
	return n, err
}

// incomplete describes err with the counts; call it before closing conn.
func (d *delivery) incomplete(err error) error {
	e := &IncompleteError{Sent: d.sent.Load(), Acked: -1, Err: err}
	if d.sc != nil {
		acked := d.acked.Load()
		if info, ierr := sockopt.Delivery(d.sc); ierr == nil {
			acked = max(acked, info.BytesAcked)
		}
		e.Acked = max(0, min(int64(acked)-int64(d.base), e.Sent))
	}
	return e
}

// drained waits, after our half-close, until the peer's TCP acknowledged
// everything we sent, the connection was reset, or the peer made no
// progress for drainStall. Without delivery counters it returns nil at
// once: the OS tells us no more.
func (d *delivery) drained(ctx context.Context) error {
	if d.sc == nil {
		return nil
	}
	last, lastAt := -1, time.Now()
	for {
		info, err := sockopt.Delivery(d.sc)
		switch {
		case err != nil:
			return nil // the socket is gone from under us: its reader reports why
		case info.Reset:
			return d.incomplete(syscall.ECONNRESET)
		case info.Unacked <= 0:
			return nil
		case info.Unacked != last:
			last, lastAt = info.Unacked, time.Now()
		case time.Since(lastAt) > drainStall:
			return d.incomplete(fmt.Errorf("no acknowledgement for %v", drainStall))
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send copies src to the connection, half-closes it, and waits until the
// peer acknowledged everything. A peer that went away (EPIPE, ECONNRESET)
// is an *IncompleteError.
func (d *delivery) send(ctx context.Context, src io.Reader) error {
	_, err := io.Copy(d, src)
	if err != nil {
		if isGone(err) {
			return d.incomplete(err)
		}
		return err
	}
	if err := closeWrite(d.conn); err != nil {
		if isGone(err) {
			return d.incomplete(err)
		}
		return err
	}
	return d.drained(ctx)
}

// receive copies the connection to dst until the peer's EOF. A reset is an
// *IncompleteError: the peer did not end its stream cleanly.
func (d *delivery) receive(dst io.Writer) error {
	_, err := io.Copy(dst, d.conn)
	if err != nil && isGone(err) && !errors.Is(err, net.ErrClosed) {
		return d.incomplete(err)
	}
	return err
}
