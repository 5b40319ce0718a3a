package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestNATHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer *punch.Event
		want string
	}{
		{"no peer info", nil, "may be symmetric"},
		{"ports kept on both sides", &punch.Event{
			Candidates: []netip.AddrPort{ap("203.0.113.10:5000"), ap("10.0.1.10:5000")},
			Observed:   ap("203.0.113.11:6000"), Local: ap("0.0.0.0:6000"),
		}, "may be symmetric"},
		{"peer's NAT changed its port", &punch.Event{
			Candidates: []netip.AddrPort{ap("203.0.113.10:63321"), ap("10.0.1.10:39113")},
			Observed:   ap("203.0.113.11:6000"), Local: ap("0.0.0.0:6000"),
		}, "peer 203.0.113.10 looks like a symmetric NAT (it mapped local port 39113 to 63321)"},
		{"our NAT changed our port", &punch.Event{
			Candidates: []netip.AddrPort{ap("203.0.113.10:5000"), ap("10.0.1.10:5000")},
			Observed:   ap("203.0.113.11:52165"), Local: ap("0.0.0.0:36269"),
		}, "our NAT 203.0.113.11 looks symmetric (it mapped local port 36269 to 52165)"},
		{"public peer: its host candidate is its observed address", &punch.Event{
			Candidates: []netip.AddrPort{ap("203.0.113.20:5000")},
			Observed:   ap("203.0.113.11:6000"), Local: ap("0.0.0.0:6000"),
		}, "may be symmetric"},
	} {
		if got := natHint(tc.peer); !strings.Contains(got, tc.want) {
			t.Errorf("%s: natHint = %q, want it to contain %q", tc.name, got, tc.want)
		}
	}
}

func TestExplainKeepsTheErrorAndSaysItInOneLine(t *testing.T) {
	refused := fmt.Errorf("dialing: %w", syscall.ECONNREFUSED)
	err := &punch.Error{
		Kind:       punch.ErrTimeout,
		Cause:      context.DeadlineExceeded,
		Candidates: []punch.CandidateError{{Addr: ap("203.0.113.10:5000"), Attempts: 7, Err: refused}},
	}
	got := explain("laptop", 5*time.Second, nil, err)
	msg := got.Error()
	for _, want := range []string{`no direct path to "laptop" after 5s`, "7 attempts to 203.0.113.10:5000 (last: connection refused)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans lines: %q", msg)
	}
	var pe *punch.Error
	if !errors.Is(got, punch.ErrTimeout) || !errors.As(got, &pe) {
		t.Errorf("explain lost the error chain: %v", got)
	}
	if ExitCode(got) != ExitNoPath {
		t.Errorf("exit code %d, want %d", ExitCode(got), ExitNoPath)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{usageError("bad"), ExitUsage},
		{fmt.Errorf("x: %w", punch.ErrRendezvous), ExitRendezvous},
		{&punch.Error{Kind: punch.ErrOnlySelfConnects}, ExitNoPath},
		{context.Canceled, ExitInterrupted},
		{errors.New("disk full"), ExitFailure},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

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
		err := explainRendezvous("rv:3478", "web", 0, 5*time.Second, wrap(tc.err))
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
	if got := explainRendezvous("rv:3478", "web", 0, time.Second, other); got != other {
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

// Two processes on one host with the same --port to the same server: the
// second one's connect finds the 4-tuple taken.
func TestExplainPortAlreadyConnected(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EADDRNOTAVAIL, syscall.EADDRINUSE} {
		cause := fmt.Errorf("%w: rendezvous: connecting to rv:3478 from 0.0.0.0:5000: %w", punch.ErrRendezvous,
			&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)})
		err := explainRendezvous("rv:3478", "web", 5000, 5*time.Second, cause)
		want := "local port 5000 already has a connection to the rendezvous server at rv:3478: another tcpunch on this host with the same --port"
		if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "check your network") {
			t.Errorf("%v: got %q, want %q…", errno, err, want)
		}
		if !errors.Is(err, errno) || ExitCode(err) != ExitRendezvous {
			t.Errorf("%v: cause or exit code lost: %v, exit %d", errno, err, ExitCode(err))
		}
	}
}

func TestExplainInterrupted(t *testing.T) {
	pe := &punch.Error{Kind: punch.ErrTimeout, Cause: context.Canceled,
		Candidates: []punch.CandidateError{{Addr: ap("203.0.113.10:5000"), Attempts: 3}}}
	err := explainInterrupted("laptop", 2340*time.Millisecond, pe)
	want := `interrupted after 2.3s while punching to "laptop": 3 attempts to 203.0.113.10:5000`
	if got := explainInterrupted("laptop", time.Second, &punch.Error{Kind: punch.ErrTimeout,
		Candidates: []punch.CandidateError{{Addr: ap("203.0.113.10:5000"), Attempts: 1}}}); !strings.HasSuffix(got.Error(), ": 1 attempt to 203.0.113.10:5000") {
		t.Errorf("got %q: want '1 attempt', singular", got)
	}
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if ExitCode(err) != ExitInterrupted || !errors.Is(err, context.Canceled) || !errors.Is(err, punch.ErrTimeout) {
		t.Errorf("exit %d, errors.Is Canceled %v: want 130 and the chain kept", ExitCode(err), errors.Is(err, context.Canceled))
	}
}
