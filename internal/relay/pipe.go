package relay

import (
	"context"
	"fmt"
	"io"
	"net"
)

// Pipe relays conn to and from a pair of streams, as nc does with stdin and
// stdout. EOF on in half-closes conn; the peer's EOF ends the copy to out.
// Pipe returns once both directions have ended, or when ctx ends (it then
// closes conn, which ends both). A reader blocked on in (a terminal, say) is
// not waited for once conn is gone.
//
// It returns nil only for a clean end: everything read from in was
// written and, where the OS tells (Linux), acknowledged by the peer's TCP
// after our half-close, and the peer ended its stream with a FIN. A peer
// that reset, died or cut the stream short is an error matching
// ErrIncomplete (an *IncompleteError with the byte counts).
func Pipe(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer) error {
	d := newDelivery(conn)
	up := make(chan error, 1)
	down := make(chan error, 1)
	go func() { up <- d.send(ctx, in) }()
	go func() { down <- d.receive(out) }()

	var upErr, downErr error
	upDone, downDone := false, false
	for !upDone || !downDone {
		select {
		case upErr = <-up:
			upDone = true
			if upErr != nil {
				// Counts were taken; nothing more will get through.
				conn.Close()
				downDone = downDone || isIncomplete(upErr)
			}
		case downErr = <-down:
			downDone = true
			if downErr != nil {
				if !upDone {
					// in may block forever; the conversation is over. What
					// we were sending is lost: say how much got through.
					downErr = d.incomplete(downErr)
				}
				conn.Close()
				upDone = true
			}
		case <-ctx.Done():
			conn.Close()
			return ctx.Err()
		}
	}
	conn.Close()
	if downErr != nil {
		if isIncomplete(downErr) {
			return downErr
		}
		return fmt.Errorf("receiving from peer: %w", downErr)
	}
	if upErr != nil {
		if isIncomplete(upErr) {
			return upErr
		}
		return fmt.Errorf("sending to peer: %w", upErr)
	}
	return nil
}
