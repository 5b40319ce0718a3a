package command

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/punch"
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
