package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// explain turns a punch failure into the one line the user reads: what
// was tried, how it ended, and what to try next. The full error stays
// wrapped for errors.Is.
func explain(name string, timeout time.Duration, peer *punch.Event, err error) error {
	var pe *punch.Error
	if errors.Is(err, punch.ErrOnlySelfConnects) {
		return &oneLine{err: err, msg: fmt.Sprintf("no direct path to %q: every candidate was our own address and port "+
			"(self-connect: two tcpunch processes on one host given the same --port?); give them different ports", name)}
	}
	if errors.Is(err, punch.ErrNoDirectPath) && errors.As(err, &pe) && pe.Cause != nil {
		return &oneLine{err: err, msg: fmt.Sprintf("no direct path to %q can exist: %v; this pair needs a relay (gave up at once instead of after %v)",
			name, pe.Cause, timeout)}
	}
	if !errors.Is(err, punch.ErrTimeout) || !errors.As(err, &pe) {
		return err
	}
	msg := fmt.Sprintf("no direct path to %q after %v", name, timeout)
	if tried := summarize(pe); tried != "" {
		msg += ": " + tried
	}
	msg += "; " + natHint(peer)
	if pe.Relay != nil {
		msg += "; relay: " + relayCause(pe.Relay)
	}
	return &oneLine{msg: msg, err: err}
}

// natHint says which NAT is in the way: from the classes both sides
// measured when the server has a second address, else a guess from the
// ports (a NAT that kept the local port, as Linux masquerade and most home
// routers do when they can, is likely endpoint-independent; one that
// changed it may be symmetric).
func natHint(peer *punch.Event) string {
	const generic = "one of the NATs may be symmetric (`tcpunch netcheck` on each side tells)"
	if peer == nil || len(peer.Candidates) == 0 {
		return generic
	}
	if h := classHint(peer.LocalClass, peer.PeerClass); h != "" {
		return h
	}
	var hints []string
	observed := peer.Candidates[0]
	for _, host := range peer.Candidates[1:] {
		if host.Addr() != observed.Addr() && host.Port() != observed.Port() {
			hints = append(hints, fmt.Sprintf("peer %v looks like a symmetric NAT (it mapped local port %d to %d)",
				observed.Addr(), host.Port(), observed.Port()))
			break
		}
	}
	if o, l := peer.Observed, peer.Local; o.IsValid() && l.IsValid() && o.Port() != l.Port() {
		hints = append(hints, fmt.Sprintf("our NAT %v looks symmetric (it mapped local port %d to %d)", o.Addr(), l.Port(), o.Port()))
	}
	if len(hints) == 0 {
		return generic
	}
	return strings.Join(hints, "; ")
}

// classHint is the hint from the measured classes, "" when neither
// side's mapping was measured.
func classHint(local, peer rendezvous.NATClass) string {
	if local.Mapping == rendezvous.MappingNotMeasured && peer.Mapping == rendezvous.MappingNotMeasured {
		return ""
	}
	var hints []string
	for _, s := range []struct {
		who string
		c   rendezvous.NATClass
	}{{"our NAT", local}, {"the peer's NAT", peer}} {
		switch {
		case s.c.Mapping.Symmetric():
			hints = append(hints, s.who+" is symmetric (measured: "+s.c.Mapping.String()+" mapping)")
		case s.c.Mapping == rendezvous.MappingNotMeasured:
			hints = append(hints, s.who+": mapping not measured")
		}
	}
	if len(hints) == 0 {
		return "both sides measured endpoint-independent mappings, so a firewall or packet loss on the path is the likelier cause (`tcpunch netcheck` on each side shows the filtering)"
	}
	return strings.Join(hints, "; ")
}

// summarize says, per candidate, how many attempts ended how.
func summarize(pe *punch.Error) string {
	var parts []string
	for _, c := range pe.Candidates {
		part := fmt.Sprintf("%s to %v", plural(c.Attempts, "attempt"), c.Addr)
		if c.Err != nil {
			part += " (last: " + rootCause(c.Err) + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// rootCause is the innermost, most specific part of an error: "connection
// refused" rather than the whole chain of what was being done.
func rootCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// oneLine is an error whose message is a summary of the error it wraps.
type oneLine struct {
	msg string
	err error
}

func (e *oneLine) Error() string { return e.msg }
func (e *oneLine) Unwrap() error { return e.err }

// explainRendezvous turns a failure to register or to find a name at the
// rendezvous server into the one line the user reads, with what to try.
// port is the --port given (0: the kernel picked one). The full error stays
// wrapped for errors.Is and the exit code.
func explainRendezvous(server, name string, port int, timeout time.Duration, err error) error {
	var se *rendezvous.ServerError
	var msg string
	switch {
	case errors.Is(err, rendezvous.ErrUnknownName):
		sep := ""
		if strings.HasPrefix(name, "-") {
			sep = "-- " // a name that looks like a flag
		}
		msg = fmt.Sprintf("no listener named %q at %s: start `tcpunch listen -r %s %s%s` on the other side first, with the same secret (or both with --insecure); names are case-sensitive",
			name, server, server, sep, name)
	case errors.Is(err, rendezvous.ErrNameTaken):
		msg = fmt.Sprintf("%q is already registered at %s by another listener: stop that one or pick another name", name, server)
	case errors.As(err, &se):
		msg = fmt.Sprintf("the rendezvous server at %s refused %q: %s (code %d)", server, name, se.Reason, se.Code)
	case port != 0 && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE)):
		// Connecting from a reused port fails this way only when that
		// port already has a connection to the same server: the 4-tuple
		// is taken.
		msg = fmt.Sprintf("local port %d already has a connection to the rendezvous server at %s: "+
			"another tcpunch on this host with the same --port (or one that just ended, whose connection the kernel still holds); "+
			"give each its own --port, or 0 for any", port, server)
	case errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("cannot reach the rendezvous server at %s: connection refused (retried for %v): is `tcpunch serve` running there, on that port?",
			server, timeout)
	case isTimeout(err):
		msg = fmt.Sprintf("cannot reach the rendezvous server at %s: no answer within %v: check the address, and that a firewall lets TCP to that port through",
			server, timeout)
	case isNetworkError(err):
		msg = fmt.Sprintf("cannot reach the rendezvous server at %s: %s (retried for %v): check the address and your network", server, rootCause(err), timeout)
	default:
		return err
	}
	return &oneLine{msg: msg, err: err}
}

// explainInterrupted is the line for a punch to name that SIGINT or
// SIGTERM cut short after elapsed (which may be far from --timeout). It
// keeps err wrapped and exits 130.
func explainInterrupted(name string, elapsed time.Duration, err error) error {
	msg := fmt.Sprintf("interrupted after %v while punching to %q", elapsed.Round(100*time.Millisecond), name)
	var pe *punch.Error
	if errors.As(err, &pe) {
		if tried := summarize(pe); tried != "" {
			msg += ": " + tried
		}
	}
	return &Error{Code: ExitInterrupted, Err: &oneLine{msg: msg, err: errors.Join(context.Canceled, err)}}
}

// explainLocal turns a failure to set up the local port into one line.
// Anything else is returned as it is.
func explainLocal(port int, err error) error {
	var msg string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		msg = fmt.Sprintf("cannot listen on local port %d: another program holds it (without SO_REUSEPORT); pick another --port, or 0 for any", port)
	case errors.Is(err, syscall.EACCES):
		msg = fmt.Sprintf("cannot listen on local port %d: permission denied (ports below 1024 need privileges); pick another --port", port)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg = fmt.Sprintf("cannot listen on local port %d: %s", port, rootCause(err))
	default:
		return err
	}
	return &oneLine{msg: msg, err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func isNetworkError(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	var errno syscall.Errno
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &errno)
}
