package command

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

func TestProgressThrottlesAttempts(t *testing.T) {
	addr := netip.MustParseAddrPort("203.0.113.10:4000")
	feed := func(verbose bool) []string {
		var out bytes.Buffer
		p := newProgress(&out, verbose, time.Minute)
		for n := 1; n <= 9; n++ {
			p.event(punch.Event{Kind: punch.EventAttempt, Addr: addr, Attempt: n})
			p.event(punch.Event{Kind: punch.EventAttempt, Addr: addr, Attempt: n, Err: fmt.Errorf("dialing %v (attempt %d): %w", addr, n, syscall.ECONNREFUSED)})
		}
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}
	quiet := feed(false)
	want := []string{
		"tcpunch: attempt 1 to 203.0.113.10:4000",
		"tcpunch: attempt 2 to 203.0.113.10:4000 (last: connection refused)",
		"tcpunch: attempt 4 to 203.0.113.10:4000 (last: connection refused)",
		"tcpunch: attempt 8 to 203.0.113.10:4000 (last: connection refused)",
	}
	if strings.Join(quiet, "\n") != strings.Join(want, "\n") {
		t.Errorf("without -v:\n%s\nwant:\n%s", strings.Join(quiet, "\n"), strings.Join(want, "\n"))
	}
	if loud := feed(true); len(loud) != 18 {
		t.Errorf("with -v: %d lines, want every attempt and failure (18):\n%s", len(loud), strings.Join(loud, "\n"))
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 attempts", 1: "1 attempt", 2: "2 attempts"} {
		if got := plural(n, "attempt"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

// A listener's punch cut short by its own shutdown says so, with the time
// it really ran, not "no direct path after --timeout".
func TestProgressPunchCutShort(t *testing.T) {
	var out strings.Builder
	p := newProgress(&out, false, 15*time.Second)
	peer := netip.MustParseAddrPort("203.0.113.10:5000")
	t0 := time.Now()
	p.event(punch.Event{Kind: punch.EventPeerInfo, Time: t0, Addr: peer, Candidates: []netip.AddrPort{peer}})
	p.event(punch.Event{Kind: punch.EventFailed, Time: t0.Add(1200 * time.Millisecond), Addr: peer,
		Err: &punch.Error{Kind: punch.ErrTimeout, Cause: context.Canceled}})
	got := out.String()
	if want := "punch with the dialer at 203.0.113.10:5000 cut short after 1.2s: the listener is stopping\n"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want it to end with %q", got, want)
	}
	if strings.Contains(got, "15s") || strings.Contains(got, "still listening") {
		t.Errorf("a cut-short punch reported as a timeout: %q", got)
	}
}
