package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// explainRendezvous turns a failure to register or to find a name at the
// rendezvous server into the one line the user reads, with what to try.
// The full error stays wrapped for errors.Is and the exit code.
func explainRendezvous(server, name string, timeout time.Duration, err error) error {
	var se *rendezvous.ServerError
	var msg string
	switch {
	case errors.Is(err, rendezvous.ErrUnknownName):
		msg = fmt.Sprintf("no listener named %q at %s: start `tcpunch listen -r %s %s` on the other side first (names are case-sensitive)",
			name, server, server, name)
	case errors.Is(err, rendezvous.ErrNameTaken):
		msg = fmt.Sprintf("%q is already registered at %s by another listener: stop that one or pick another name", name, server)
	case errors.As(err, &se):
		msg = fmt.Sprintf("the rendezvous server at %s refused %q: %s (code %d)", server, name, se.Reason, se.Code)
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
