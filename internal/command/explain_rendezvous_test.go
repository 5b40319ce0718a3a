package command

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

func TestExplainRendezvous(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	notFound := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "rv.example", IsNotFound: true}}
	wrap := func(err error) error {
		return fmt.Errorf("%w: %w", punch.ErrRendezvous, fmt.Errorf("rendezvous: connect to %q via %s: %w", "web", "rv:3478", err))
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&rendezvous.ServerError{Code: rendezvous.CodeUnknownName, Reason: "no listener holds \"web\""},
			"no listener named \"web\" at rv:3478: start `tcpunch listen -r rv:3478 web` on the other side first"},
		{&rendezvous.ServerError{Code: rendezvous.CodeNameTaken, Reason: "taken"},
			"\"web\" is already registered at rv:3478 by another listener: stop that one or pick another name"},
		{&rendezvous.ServerError{Code: rendezvous.CodeBadRequest, Reason: "bad name"},
			"the rendezvous server at rv:3478 refused \"web\": bad name (code 400)"},
		{refused, "cannot reach the rendezvous server at rv:3478: connection refused (retried for 5s): is `tcpunch serve` running there"},
		{fmt.Errorf("dialing: %w", errTimeout{}), "cannot reach the rendezvous server at rv:3478: no answer within 5s"},
		{notFound, "cannot reach the rendezvous server at rv:3478: lookup rv.example: no such host (retried for 5s)"},
	} {
		err := explainRendezvous("rv:3478", "web", 5*time.Second, wrap(tc.err))
		msg := err.Error()
		if !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%v:\n got %q\nwant %q…", tc.err, msg, tc.want)
		}
		if strings.Contains(msg, "\n") || strings.Contains(msg, "punch: rendezvous failed") {
			t.Errorf("not one short line: %q", msg)
		}
		if !errors.Is(err, tc.err) || ExitCode(err) != ExitRendezvous {
			t.Errorf("%q: the cause is lost (errors.Is %v, exit %d)", msg, errors.Is(err, tc.err), ExitCode(err))
		}
	}
	other := errors.New("something else")
	if got := explainRendezvous("rv:3478", "web", time.Second, other); got != other {
		t.Errorf("an unknown error is rewritten: %v", got)
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func TestExplainLocal(t *testing.T) {
	inUse := fmt.Errorf("punch: listening on 0.0.0.0:4000: %w", &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)})
	err := explainLocal(4000, inUse)
	want := "cannot listen on local port 4000: another program holds it (without SO_REUSEPORT); pick another --port, or 0 for any"
	if err.Error() != want || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("got %q (cause kept: %v), want %q", err, errors.Is(err, syscall.EADDRINUSE), want)
	}
	other := errors.New("something else")
	if got := explainLocal(4000, other); got != other {
		t.Errorf("an unknown error is rewritten: %v", got)
	}
}
