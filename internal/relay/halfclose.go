package relay

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// closeWriter is the half-close side of *net.TCPConn and *net.UnixConn
// (and of punch.Conn, which embeds *net.TCPConn).
type closeWriter interface {
	CloseWrite() error
}

// closeWrite signals EOF to the far end of w while still letting the other
// direction run. Writers that cannot half-close are closed entirely.
func closeWrite(w io.Writer) error {
	switch c := w.(type) {
	case closeWriter:
		return c.CloseWrite()
	case io.Closer:
		return c.Close()
	}
	return nil
}

// isIncomplete reports an *IncompleteError.
func isIncomplete(err error) bool { return errors.Is(err, ErrIncomplete) }

// isGone reports errors that mean the other end is already closed.
func isGone(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNRESET)
}
