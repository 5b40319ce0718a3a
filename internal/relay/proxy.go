package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Proxy relays a and b in both directions until both have half-closed, one
// fails, or ctx ends. Both are closed when it returns.
func Proxy(ctx context.Context, a, b net.Conn) error {
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 2)
	go func() { _, err := copyHalf(b, a); errc <- err }()
	go func() { _, err := copyHalf(a, b); errc <- err }()

	var errs []error
	for pending := 2; pending > 0; {
		select {
		case err := <-errc:
			pending--
			if err != nil && !isGone(err) {
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
