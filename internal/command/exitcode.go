package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/tcpunch/tcpunch/internal/relay"
	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// Exit codes, documented in README.md and in `tcpunch --help`.
const (
	ExitOK          = 0   // done; for services, stopped by SIGINT/SIGTERM
	ExitFailure     = 1   // anything else: I/O, a child that failed
	ExitUsage       = 2   // bad flags or arguments, an unknown command, a malformed --rendezvous
	ExitNoPath      = 3   // no path: the punch timed out (relaying off, refused or impossible), the NAT classes rule direct out with relaying off, or the peer refused verification
	ExitRendezvous  = 4   // the rendezvous server: unreachable, unknown name, name taken, listener busy, --port already connected to it
	ExitIncomplete  = 5   // the peer reset, died or cut the stream, or the relay ended it: data may be lost (the line says how many bytes were sent and acknowledged, or the relay's reason)
	ExitAuth        = 6   // authentication failed: the peer holds another secret or code, or a one-time code was retired
	ExitInterrupted = 130 // a one-shot command interrupted by SIGINT/SIGTERM
)

// Error carries the exit code for an error. Its message is the one line the
// user sees.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// usageError reports a bad invocation (exit 2).
func usageError(format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error from this package to the process exit code.
func ExitCode(err error) int {
	var e *Error
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, relay.ErrIncomplete), errors.Is(err, punch.ErrIncomplete),
		// A relayed stream cut by the server (a limit: END) or by its
		// death is a stream that did not end cleanly, whichever
		// direction noticed first.
		errors.Is(err, rendezvous.ErrRelayEnded), errors.Is(err, rendezvous.ErrRelayLost):
		return ExitIncomplete
	case errors.Is(err, punch.ErrAuthFailed), errors.Is(err, punch.ErrCodeRetired):
		return ExitAuth
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, punch.ErrTimeout), errors.Is(err, punch.ErrPeerRejected),
		errors.Is(err, punch.ErrOnlySelfConnects), errors.Is(err, punch.ErrNoCandidates),
		errors.Is(err, punch.ErrNoDirectPath):
		return ExitNoPath
	case errors.Is(err, punch.ErrRendezvous), errors.Is(err, rendezvous.ErrUnknownName),
		errors.Is(err, rendezvous.ErrNameTaken):
		return ExitRendezvous
	}
	return ExitFailure
}
