package punch

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors: the Kind of an [*Error], usable with errors.Is.
var (
	// ErrNoCandidates: nothing could be dialed (no candidates, none usable
	// from the local address), or every candidate answered as some other
	// host.
	ErrNoCandidates = errors.New("punch: no usable candidates")
	// ErrTimeout: the context ended, or the Endpoint was closed, before a
	// connection was verified and nominated. The *Error's Cause says which.
	ErrTimeout = errors.New("punch: no verified connection before the deadline")
	// ErrOnlySelfConnects: every candidate turned out to be our own endpoint.
	ErrOnlySelfConnects = errors.New("punch: every candidate was ourselves (self-connect)")
	// ErrPeerRejected: nothing worked and the peer refused at least one of
	// our connections (wrong session, same role, unsupported version).
	ErrPeerRejected = errors.New("punch: the peer rejected the connection")
	// ErrInvalidSession: [Endpoint.Punch] was given a session it cannot
	// run (a role that is neither controlling nor controlled, or the tag
	// of a punch already running on the Endpoint). Nothing was dialed.
	ErrInvalidSession = errors.New("punch: invalid session")
	// ErrEndpoint: [Punch] could not set up its Endpoint (an option that
	// makes no sense, the local port taken, ...). The *Error's Cause says
	// why; errors.Is works with its syscall errors.
	ErrEndpoint = errors.New("punch: cannot set up the local endpoint")
	// ErrRendezvous: [Listen] or [Dial] failed before punching, at the
	// rendezvous server (unreachable, unknown name, name taken, ...). The
	// rendezvous package's own error is wrapped too, so errors.Is works
	// with rendezvous.ErrUnknownName and rendezvous.ErrNameTaken.
	ErrRendezvous = errors.New("punch: rendezvous failed")
)

// CandidateError is how dialing one candidate went.
type CandidateError struct {
	Addr     netip.AddrPort
	Attempts int
	Err      error // the last error; nil if the candidate never failed
}

// Error is a failed punch. errors.Is matches its Kind and its Cause, so
// errors.Is(err, context.DeadlineExceeded) holds when the deadline ended it.
type Error struct {
	Kind       error            // ErrNoCandidates, ErrTimeout, ErrOnlySelfConnects, ErrPeerRejected, ErrInvalidSession, ErrEndpoint or ErrNoDirectPath
	Candidates []CandidateError // the last error per candidate, in the session's order
	Cause      error            // what ended the punch, e.g. ctx.Err(); may be nil
	Relay      error            // why the relay did not connect, when it was tried; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Cause != nil {
		fmt.Fprintf(&b, " (%v)", e.Cause)
	}
	for i, c := range e.Candidates {
		if i == 0 {
			b.WriteString(":")
		} else {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %v after %d attempts", c.Addr, c.Attempts)
		if c.Err != nil {
			fmt.Fprintf(&b, ": %v", c.Err)
		}
	}
	if e.Relay != nil {
		fmt.Fprintf(&b, "; relay: %v", e.Relay)
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	errs := []error{e.Kind}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// rejectedError is a reject frame the peer sent us.
type rejectedError struct{ reason rejectReason }

func (e *rejectedError) Error() string {
	return "peer rejected the connection: " + e.reason.String()
}

func (e *rejectedError) Is(target error) bool { return target == ErrPeerRejected }

// verifyError is a hello we refused. reply is set when the peer spoke our
// protocol, so it is told why in a reject frame.
type verifyError struct {
	reason rejectReason
	reply  bool
	detail string
}

func (e *verifyError) Error() string {
	s := "verification failed: " + e.reason.String()
	if e.detail != "" {
		s += " (" + e.detail + ")"
	}
	return s
}

var (
	errSelfConnect  = errors.New("connection to ourselves")
	errNoLocalAddr  = errors.New("connection has no local TCP address")
	errNoRemoteAddr = errors.New("connection has no remote TCP address")
)
