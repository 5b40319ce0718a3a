//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

const coturnPort = 3479

// requireCoturn is natlab.Require plus coturn's turnserver: skipped when it is
// missing, failed under CI=true (the Makefile's deps target installs it).
func requireCoturn(t *testing.T) {
	t.Helper()
	natlab.Require(t)
	if _, err := exec.LookPath("turnserver"); err != nil {
		msg := "coturn's turnserver not found: install with `apt-get install coturn` (or `make deps` as root)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the STUN interop test must run in CI, so this fails instead of skipping)")
		}
		t.Skip(msg)
	}
}

// startCoturn runs coturn as a plain process (not the packaged service) on
// h: STUN only, TCP only, on addr:port, no configuration file, with its
// pid file and database in a temporary directory of the test. It returns
// once coturn accepts connections.
func startCoturn(t *testing.T, h *natlab.Host, addr netip.Addr, port int) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, "turnserver",
		"-n",                   // no configuration file: everything from here
		"--stun-only",          // no TURN: Binding requests only
		"--no-udp", "--no-tls", // TCP listeners only...
		"--no-dtls",
		"--no-cli",     // no telnet CLI on 127.0.0.1:5766
		"--no-rfc5780", // one address: no NAT behaviour discovery
		"--listening-ip", addr.String(),
		"--listening-port", fmt.Sprint(port),
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), // not /var/run: tests run in parallel
		"--db", filepath.Join(dir, "turndb"), // not the packaged /var/lib/turn/turndb
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting coturn: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel() // kills its process group
		<-exited
		if t.Failed() {
			t.Logf("coturn's output:\n%s", out.String())
		}
	})
	target := netip.AddrPortFrom(addr, uint16(port)).String()
	deadline := time.Now().Add(15 * time.Second)
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := h.Dial(dctx, "tcp", target)
		dcancel()
		if err == nil {
			c.Close()
			return target
		}
		select {
		case <-exited:
			t.Fatalf("coturn exited; output:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn does not accept on %s after 15 s: %v; output:\n%s", target, err, out.String())
		}
	}
}

// stunRun runs `tcpunch stun` in h's namespace and returns its stdout.
func stunRun(t *testing.T, h *natlab.Host, args ...string) string {
	t.Helper()
	var out syncBuffer
	p := start(t, in(h), nil, &out, append([]string{"stun"}, args...)...)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("tcpunch stun %s: exit %d; stderr:\n%s", strings.Join(args, " "), code, p.stderr.String())
	}
	t.Logf("tcpunch stun %s:\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

// stunLab is a lab with one peer behind a router of kind, coturn and
// tcpunch serve on the rendezvous host.
func stunLab(t *testing.T, kind natlab.NATKind) (peer *natlab.Host, rdv, coturn string) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	l, err := natlab.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closeWithTest(t, l)
	r, err := l.AddRouter(ctx, "nat", kind)
	if err != nil {
		t.Fatal(err)
	}
	if peer, err = l.AddPeer(ctx, "peer", r); err != nil {
		t.Fatal(err)
	}
	if err := ipv4Only(peer); err != nil {
		t.Fatal(err)
	}
	coturn = startCoturn(t, l.Rendezvous(), l.Rendezvous().Addr(), coturnPort)
	rdv, _ = serve(t, in(l.Rendezvous()), netip.AddrPortFrom(l.Rendezvous().Addr(), rdvPort).String())
	return peer, rdv, coturn
}

var mappedLine = regexp.MustCompile(`(?m)^(?:(\S+)\t)?(\S+:\d+)$`)

// mappings parses stun's output: SERVER\tMAPPED lines (several servers) or
// one MAPPED line.
func mappings(t *testing.T, out string) map[string]netip.AddrPort {
	t.Helper()
	m := map[string]netip.AddrPort{}
	for _, sm := range mappedLine.FindAllStringSubmatch(out, -1) {
		a, err := netip.ParseAddrPort(sm[2])
		if err != nil {
			t.Fatalf("stun printed %q: %v", sm[0], err)
		}
		m[sm[1]] = unmapped(a)
	}
	return m
}

// TestLabStunInterop: `tcpunch stun` against coturn (STUN over TCP) returns
// the NAT's public mapping, agrees with tcpunch's own server behind an
// endpoint-independent NAT, and with both servers reports a symmetric NAT.
func TestLabStunInterop(t *testing.T) {
	requireCoturn(t)
	t.Parallel()

	t.Run("coturn-behind-drop-nat", func(t *testing.T) {
		t.Parallel()
		peer, rdv, coturn := stunLab(t, natlab.NATDrop)
		wan := peer.Router().Addr()

		// A chosen port: a fresh port-preserving masquerade maps it 1:1.
		got := mappings(t, stunRun(t, peer, "--port", "5000", coturn))
		if want := netip.AddrPortFrom(wan, 5000); len(got) != 1 || got[""] != want {
			t.Errorf("coturn saw %v, want the NAT's public mapping %v", got, want)
		}
		// A port the kernel picks: the address is the router's WAN one.
		got = mappings(t, stunRun(t, peer, coturn))
		if len(got) != 1 || got[""].Addr() != wan {
			t.Errorf("coturn saw %v, want the router's WAN address %v", got, wan)
		}
		// Both servers from one port: the same mapping, punchable.
		out := stunRun(t, peer, "--port", "5001", rdv, coturn)
		got = mappings(t, out)
		want := netip.AddrPortFrom(wan, 5001)
		if got[rdv] != want || got[coturn] != want {
			t.Errorf("tcpunch serve saw %v and coturn %v, want both %v", got[rdv], got[coturn], want)
		}
		if !strings.Contains(out, "endpoint-independent") || strings.Contains(out, "symmetric") {
			t.Errorf("stun's verdict behind an endpoint-independent NAT:\n%s", out)
		}
	})

	t.Run("two-servers-behind-symmetric-nat", func(t *testing.T) {
		t.Parallel()
		peer, rdv, coturn := stunLab(t, natlab.NATSymmetric)
		wan := peer.Router().Addr()
		out := stunRun(t, peer, "--port", "5000", rdv, coturn)
		got := mappings(t, out)
		if got[rdv].Addr() != wan || got[coturn].Addr() != wan {
			t.Errorf("mappings %v: want both on the router's WAN address %v", got, wan)
		}
		if got[rdv] == got[coturn] {
			t.Errorf("a fully-random NAT gave one mapping %v for two destinations", got[rdv])
		}
		if !strings.Contains(out, "symmetric NAT") {
			t.Errorf("stun did not report a symmetric NAT:\n%s", out)
		}
	})
}
