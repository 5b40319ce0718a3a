//go:build linux

package e2e_test

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestServeRelayEnv: serve's --relay on|off has its own environment
// variable, TCPUNCH_SERVE_RELAY. TCPUNCH_RELAY is the clients'
// --relay auto|never|always: set for them in the same shell, it must not
// stop (or change) a server; TCPUNCH_SERVE_RELAY=off turns relaying off.
func TestServeRelayEnv(t *testing.T) {
	t.Parallel()
	punchRelayed := func(t *testing.T, rv, name string) (code int, stderr string) {
		l := start(t, nil, strings.NewReader("hi\n"), io.Discard, "listen", "-r", rv, "--relay", "always", "--timeout", "20s", name)
		l.waitReady(30 * time.Second)
		d := start(t, nil, strings.NewReader("hi\n"), io.Discard, "dial", "-r", rv, "--relay", "always", "--timeout", "20s", "--report", "json", name)
		return d.wait(60 * time.Second), d.stderr.String()
	}
	t.Run("client variable ignored", func(t *testing.T) {
		t.Parallel()
		s := start(t, []string{"env", "TCPUNCH_RELAY=never"}, nil, io.Discard, "serve", "--listen", "127.0.0.1:0")
		rv := s.waitReady(30 * time.Second)
		code, stderr := punchRelayed(t, rv, "env-client")
		if code != 0 || !strings.Contains(stderr, `"path":"relay"`) {
			t.Fatalf("a server started with TCPUNCH_RELAY=never: dial --relay always exit %d; want a relayed connection; stderr:\n%s", code, stderr)
		}
	})
	t.Run("serve variable off", func(t *testing.T) {
		t.Parallel()
		s := start(t, []string{"env", "TCPUNCH_SERVE_RELAY=off"}, nil, io.Discard, "serve", "--listen", "127.0.0.1:0")
		rv := s.waitReady(30 * time.Second)
		code, stderr := punchRelayed(t, rv, "env-serve")
		if code != 3 || !strings.Contains(stderr, "does not relay") {
			t.Fatalf("a server started with TCPUNCH_SERVE_RELAY=off: dial --relay always exit %d, want 3 saying the server does not relay; stderr:\n%s", code, stderr)
		}
	})
}
