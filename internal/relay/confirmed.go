package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

// Confirmed is a connection with end-of-stream confirmation: the
// *punch.Conn of Listen and Dial. The relays below end with Finish, so
// they return nil only when everything we sent was read by the peer's
// application and the peer's stream ended cleanly; anything else is an
// error matching punch.ErrIncomplete with the byte counts.
type Confirmed interface {
	net.Conn
	CloseWrite() error
	Finish(ctx context.Context) (punch.Delivery, error)
}

// finishGrace bounds how long a relay waits for the peer's acknowledgement
// once its own side is done, when nothing else bounds it.
const finishGrace = 30 * time.Second

// PipeConfirmed is Pipe over a confirmed connection: stdin to the peer,
// the peer to stdout, then Finish.
func PipeConfirmed(ctx context.Context, conn Confirmed, in io.Reader, out io.Writer) error {
	up := make(chan error, 1)
	down := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, in)
		if err == nil {
			err = conn.CloseWrite()
		}
		up <- err
	}()
	go func() {
		_, err := io.Copy(out, conn)
		down <- err
	}()

	var upErr, downErr error
	for upDone, downDone := false, false; !upDone || !downDone; {
		select {
		case upErr = <-up:
			upDone = true
			if upErr != nil {
				conn.Close()
			}
		case downErr = <-down:
			downDone = true
			if downErr != nil {
				conn.Close()
				upDone = true // in may block forever; the conversation is over
			}
		case <-ctx.Done():
			conn.Close()
			return ctx.Err()
		}
	}
	return finish(ctx, conn, errors.Join(upErr, downErr))
}

// ProxyConfirmed is Proxy between a confirmed connection and a local one
// (the --forward service or a --local client), then Finish.
func ProxyConfirmed(ctx context.Context, conn Confirmed, local net.Conn) error {
	defer local.Close()
	errc := make(chan error, 2)
	go func() { errc <- copyThenCloseWrite(conn, local) }()
	go func() { errc <- copyThenCloseWrite(local, conn) }()
	var errs []error
	for pending := 2; pending > 0; pending-- {
		select {
		case err := <-errc:
			if err != nil && !isGone(err) {
				errs = append(errs, err)
				local.Close()
				conn.Close()
			}
		case <-ctx.Done():
			local.Close()
			conn.Close()
			return ctx.Err()
		}
	}
	return finish(ctx, conn, errors.Join(errs...))
}

// ExecConfirmed is Exec over a confirmed connection: the child's stdin and
// stdout are pipes we relay, since the socket itself carries the link's
// framing (and, in a secure mode, its encryption).
func ExecConfirmed(ctx context.Context, conn Confirmed, command string, stderr io.Writer) error {
	cmd := shellCommand(ctx, command)
	tail := &lineEnd{w: stderr}
	cmd.Stderr = tail
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		conn.Close()
		return fmt.Errorf("starting %q: %w", command, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		conn.Close()
		return fmt.Errorf("starting %q: %w", command, err)
	}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return fmt.Errorf("starting %q: %w", command, err)
	}
	// The peer's data to the child; its end closes the child's stdin.
	go func() {
		io.Copy(stdin, conn)
		stdin.Close()
	}()
	// The child's output to the peer, until the child closes its stdout.
	_, upErr := io.Copy(conn, stdout)
	if upErr == nil {
		upErr = conn.CloseWrite()
	}
	werr := cmd.Wait()
	if errors.Is(werr, exec.ErrWaitDelay) {
		werr = nil
	}
	if werr != nil {
		tail.endLine()
		conn.Close()
		return fmt.Errorf("running %q: %w", command, werr)
	}
	return finish(ctx, conn, upErr)
}

// finish waits (bounded) for the confirmation and closes conn. cause is a
// relay error seen before; it makes the result incomplete whatever the
// counts say.
func finish(ctx context.Context, conn Confirmed, cause error) error {
	defer conn.Close()
	fctx, cancel := context.WithTimeout(ctx, finishGrace)
	defer cancel()
	if cause != nil {
		// The conn may still be open: Finish would wait for nothing.
		conn.Close()
	}
	_, err := conn.Finish(fctx)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if cause != nil {
		// The counts are Finish's; the reason is what ended the relay (a
		// reset, the relay server's END), not Finish's failure to send on
		// the connection closed above.
		var ie *punch.IncompleteError
		if errors.As(err, &ie) {
			return &punch.IncompleteError{Delivery: ie.Delivery, Err: cause}
		}
		return cause
	}
	return err
}

// copyThenCloseWrite copies src to dst, then half-closes dst (a confirmed
// conn sends its FIN frame).
func copyThenCloseWrite(dst io.Writer, src io.Reader) error {
	_, err := io.Copy(dst, src)
	if cerr := closeWrite(dst); err == nil && cerr != nil && !isGone(cerr) {
		err = cerr
	}
	return err
}
