package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// Proxy relays a and b in both directions until both have half-closed, one
// fails, or ctx ends. Both are closed when it returns. A side that reset
// or died before ending its stream cleanly, or that did not acknowledge
// what was sent to it (Linux), is an error matching ErrIncomplete.
func Proxy(ctx context.Context, a, b net.Conn) error {
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 2)
	toA, toB := newDelivery(a), newDelivery(b)
	// Each direction reads one side and sends to the other; a read that
	// ends with a reset is the reader's peer cutting its stream.
	go func() { errc <- relayHalf(ctx, toB, a) }()
	go func() { errc <- relayHalf(ctx, toA, b) }()

	var errs []error
	for pending := 2; pending > 0; {
		select {
		case err := <-errc:
			pending--
			if err != nil {
				errs = append(errs, err)
				// One side broke: unblock the other direction.
				a.Close()
				b.Close()
			}
		case <-ctx.Done():
			a.Close()
			b.Close()
			for ; pending > 0; pending-- {
				<-errc
			}
			return ctx.Err()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("relaying %v <-> %v: %w", a.RemoteAddr(), b.RemoteAddr(), err)
	}
	return nil
}

// relayHalf sends what src's peer sends to dst's peer, then half-closes
// dst and waits for dst's peer to acknowledge it.
func relayHalf(ctx context.Context, dst *delivery, src net.Conn) error {
	err := dst.send(ctx, readerOf{src})
	var re readErr
	if errors.As(err, &re) {
		if isGone(re.err) && !errors.Is(re.err, net.ErrClosed) {
			return newDelivery(src).incomplete(re.err)
		}
		return re.err
	}
	return err
}

// readerOf marks read errors so that relayHalf can tell them from write
// errors.
type readerOf struct{ r io.Reader }

type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }

func (r readerOf) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		return n, readErr{err}
	}
	return n, err
}
