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

// The peer-found line names the peer by the label the user typed, not the
// pk- name the server sees; -v adds the derived name. A code shows only its
// nameplate: its words are a password.
func TestProgressPeerFoundLabel(t *testing.T) {
	peer := netip.MustParseAddrPort("203.0.113.10:5000")
	us := netip.MustParseAddrPort("198.51.100.7:6000")
	const derived = "pk-3f9a0c7d1e2b4a5c6d7e8f9a0b1c2d3e"
	ev := punch.Event{Kind: punch.EventPeerInfo, Addr: peer, Candidates: []netip.AddrPort{peer}, Observed: us,
		Detail: fmt.Sprintf("%q at %v (candidates %v); we are %v", derived, peer, []netip.AddrPort{peer}, us)}
	code, err := punch.ParseCode("7-amber-orbit-lamp")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tr          trust
		verbose     bool
		want, never string
	}{
		{trust{mode: punch.AuthSecret, label: "box"}, false, `peer found: "box" at 203.0.113.10:5000 (candidates [203.0.113.10:5000]); we are 198.51.100.7:6000`, derived},
		{trust{mode: punch.AuthSecret, label: "box"}, true, `the rendezvous knows "box" as "` + derived + `"`, ""},
		{trust{mode: punch.AuthCode, code: code, label: code.String()}, false, `peer found: code 7 at 203.0.113.10:5000`, "amber"},
		{trust{mode: punch.AuthCode, code: code, label: code.String()}, true, `peer found: code 7 at`, "amber"},
		{trust{mode: punch.AuthInsecure, label: "open"}, true, `peer found: "open" at`, derived},
	} {
		var out strings.Builder
		p := newProgress(&out, c.verbose, time.Minute)
		p.setTrust(c.tr)
		p.event(ev)
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%s -v=%v: got\n%s\nwant a line with %q", c.tr.mode, c.verbose, out.String(), c.want)
		}
		if c.never != "" && strings.Contains(out.String(), c.never) {
			t.Errorf("%s -v=%v: %q printed:\n%s", c.tr.mode, c.verbose, c.never, out.String())
		}
	}
}

// The upgrade's --report json line carries the move's account: round,
// the stalls (read absent when not measured), the direct remote.
func TestProgressUpgradeReport(t *testing.T) {
	remote := netip.MustParseAddrPort("203.0.113.7:40311")
	for _, c := range []struct {
		name string
		up   punch.Upgrade
		want []string
		not  string
	}{
		{"measured", punch.Upgrade{From: punch.PathRelay, After: 1500 * time.Millisecond, Round: 2, ReadStall: 1200 * time.Microsecond, ReadStallMeasured: true, WriteStall: 100 * time.Microsecond},
			[]string{`"round":2`, `"stall_ms":1.2`, `"read_stall_ms":1.2`, `"write_stall_ms":0.1`, `"remote":"203.0.113.7:40311"`, `"upgraded_after_ms":1500`, "stall 1.2 ms reading, 0.1 ms writing"}, ""},
		{"unmeasured", punch.Upgrade{From: punch.PathRelay, After: time.Second, WriteStall: 50 * time.Microsecond},
			[]string{`"round":0`, `"stall_ms":0.05`, "reading not measured"}, "read_stall_ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			p := newProgress(&out, false, 15*time.Second)
			p.connected(punch.Info{Path: punch.PathRelay, Method: punch.MethodRelay, Auth: punch.AuthInsecure}, true)
			p.event(punch.Event{Kind: punch.EventUpgraded, Addr: remote, Elapsed: c.up.After, Upgrade: c.up, Detail: "upgraded to direct after 1.5 s"})
			got := out.String()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %s in:\n%s", w, got)
				}
			}
			if c.not != "" && strings.Contains(got, c.not) {
				t.Errorf("%s in:\n%s", c.not, got)
			}
		})
	}
}
