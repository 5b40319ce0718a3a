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
func Pipe(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer) error {
	up := make(chan error, 1)
	down := make(chan error, 1)
	go func() {
		_, err := copyHalf(conn, in)
		up <- err
	}()
	go func() {
		_, err := io.Copy(out, conn)
		down <- err
	}()

	var upErr, downErr error
	upDone, downDone := false, false
	for !upDone || !downDone {
		select {
		case upErr = <-up:
			upDone = true
			if upErr != nil && isGone(upErr) {
				// The peer is gone entirely: nothing more will arrive either.
				upErr = nil
				conn.Close()
			}
		case downErr = <-down:
			downDone = true
			if downErr != nil {
				conn.Close()
				upDone = true // in may block forever; the conversation is over.
			}
		case <-ctx.Done():
			conn.Close()
			return ctx.Err()
		}
	}
	conn.Close()
	if downErr != nil && !isGone(downErr) {
		return fmt.Errorf("receiving from peer: %w", downErr)
	}
	if upErr != nil {
		return fmt.Errorf("sending to peer: %w", upErr)
	}
	return nil
}
