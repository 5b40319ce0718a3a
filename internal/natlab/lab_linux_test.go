//go:build linux

package natlab_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
	"github.com/tcpunch/tcpunch/sockopt"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// TestMain removes namespaces that earlier, killed test runs left behind
// (Sweep only touches labs of processes that no longer exist).
func TestMain(m *testing.M) {
	if natlab.Check().Err() == nil {
		if err := natlab.Sweep(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(m.Run())
}

// newLab builds a lab for one test and closes it when the test ends, also
// when it fails (t.Cleanup runs on FailNow's Goexit too).
func newLab(t *testing.T) *natlab.Lab {
	t.Helper()
	natlab.Require(t)
	start := time.Now()
	l, err := natlab.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		start := time.Now()
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		t.Logf("teardown %v", time.Since(start))
	})
	t.Logf("lab %s up in %v", l.Prefix(), time.Since(start))
	return l
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// serveAddrEcho is the tiny rendezvous stand-in: it tells each client the
// address it sees the client at ("ip:port\n"), then echoes what it reads.
func serveAddrEcho(t *testing.T, h *natlab.Host, network, addr string) net.Listener {
	t.Helper()
	ln := must[net.Listener](t)(h.Listen(t.Context(), network, addr))
	testnet.Serve(t, ln, func(c net.Conn) {
		fmt.Fprintf(c, "%s\n", c.RemoteAddr())
		io.Copy(c, c)
	})
	return ln
}

// observe dials the address server from local inside h and returns the
// address the server saw, with the conn (still usable as an echo).
func observe(ctx context.Context, h *natlab.Host, local netip.AddrPort, server string) (netip.AddrPort, net.Conn, error) {
	c, err := h.DialWith(ctx, sockopt.Dialer(local), "tcp", server)
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return netip.AddrPort{}, nil, err
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		c.Close()
		return netip.AddrPort{}, nil, err
	}
	return ap, c, nil
}

func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

func TestMasquerade(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	home := must[*natlab.Router](t)(l.AddRouter(ctx, "home", natlab.NATDrop))
	cgn := must[*natlab.Router](t)(l.AddRouter(ctx, "cgn", natlab.NATDrop))
	inner := must[*natlab.Router](t)(l.AddRouterBehind(ctx, "inner", natlab.NATDrop, cgn))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", home))
	q := must[*natlab.Host](t)(l.AddPeer(ctx, "q", inner))
	rdv := l.Rendezvous()
	serveAddrEcho(t, rdv, "tcp", ":7000")

	for _, c := range []struct {
		name   string
		h      *natlab.Host
		server netip.Addr
		want   netip.Addr
	}{
		{"behind one NAT", p, rdv.Addr(), home.Addr()},
		{"behind double NAT", q, rdv.Addr(), cgn.Addr()},
		{"IPv6 is not translated", p, rdv.Addr6(), p.Addr6()},
		{"IPv6 through two routers", q, rdv.Addr6(), q.Addr6()},
	} {
		got, conn, err := observe(ctx, c.h, netip.AddrPort{}, hostPort(c.server, 7000))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		conn.Close()
		if got.Addr() != c.want {
			t.Errorf("%s: server saw %v, want address %v", c.name, got, c.want)
		}
	}
}

func TestUnsolicitedInbound(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	drop := must[*natlab.Router](t)(l.AddRouter(ctx, "drop", natlab.NATDrop))
	rst := must[*natlab.Router](t)(l.AddRouter(ctx, "rst", natlab.NATReject))
	open := must[*natlab.Router](t)(l.AddRouter(ctx, "open", natlab.NATOpen))
	pd := must[*natlab.Host](t)(l.AddPeer(ctx, "pd", drop))
	pr := must[*natlab.Host](t)(l.AddPeer(ctx, "pr", rst))
	for _, h := range []*natlab.Host{pd, pr} {
		serveAddrEcho(t, h, "tcp", ":7000") // a listener behind the NAT must not help
	}
	rdv := l.Rendezvous()

	// Long enough that a RST is never mistaken for a silent drop on a
	// loaded machine; a drop costs the whole of it.
	const timeout = 2 * time.Second
	for _, c := range []struct {
		name    string
		dst     netip.Addr
		refused bool // else: must time out
	}{
		{"drop NAT", drop.Addr(), false},
		{"rst NAT", rst.Addr(), true},
		{"open NAT", open.Addr(), true},
		{"drop firewall IPv6", pd.Addr6(), false},
		{"rst firewall IPv6", pr.Addr6(), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			conn, err := rdv.Dial(dctx, "tcp", hostPort(c.dst, 7000))
			if err == nil {
				conn.Close()
				t.Fatal("unsolicited connection got through")
			}
			refused := errors.Is(err, syscall.ECONNREFUSED)
			var ne net.Error
			timedOut := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
			switch {
			case c.refused && !refused:
				t.Errorf("want ECONNREFUSED (RST), got %v", err)
			case !c.refused && !timedOut:
				t.Errorf("want a timeout (silent drop), got %v", err)
			}
		})
	}
}

// punch is the bare hole punch of docs/ARCHITECTURE.md ("What a bare punch loop showed"): a listener and jittered re-dials
// to the peer's public endpoint, all on one reused local port. It returns
// the first connection, accepted or dialed.
func punch(ctx context.Context, h *natlab.Host, ln net.Listener, local, peer netip.AddrPort) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan net.Conn, 2)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- c
		}
	}()
	go func() {
		for ctx.Err() == nil {
			dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			c, err := h.DialWith(dctx, sockopt.Dialer(local), "tcp", peer.String())
			dcancel()
			if err == nil {
				got <- c
				return
			}
			// Jitter: a fixed period phase-locks with the peer's and,
			// through RST-answering NATs, never meets (docs/ARCHITECTURE.md).
			select {
			case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}()
	select {
	case c := <-got:
		ln.Close() // ends the accept goroutine
		return c, nil
	case <-ctx.Done():
		ln.Close()
		return nil, ctx.Err()
	}
}

func TestBarePunch(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"drop×drop", "rst×rst-50ms"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			natlab.Require(t)
			sc := must[natlab.Scenario](t)(natlab.Lookup(name))
			p, err := sc.Build(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			ctx := t.Context()
			rdv := p.Rendezvous()
			serveAddrEcho(t, rdv, "tcp", ":3478")

			const rounds = 3
			for round := range rounds {
				type side struct {
					h      *natlab.Host
					ln     net.Listener
					local  netip.AddrPort
					public netip.AddrPort
				}
				sides := make([]*side, 2)
				for i, h := range []*natlab.Host{p.A, p.B} {
					s := &side{h: h}
					s.ln = must[net.Listener](t)(h.ListenConfig(ctx, sockopt.ListenConfig(), "tcp4", ":0"))
					s.local = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(s.ln.Addr().(*net.TCPAddr).Port))
					pub, c, err := observe(ctx, h, s.local, hostPort(rdv.Addr(), 3478))
					if err != nil {
						t.Fatal(err)
					}
					c.Close()
					s.public = pub
					sides[i] = s
				}
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				start := time.Now()
				conns := make(chan net.Conn, 2)
				errs := make(chan error, 2)
				for i, s := range sides {
					go func() {
						c, err := punch(pctx, s.h, s.ln, s.local, sides[1-i].public)
						if err != nil {
							errs <- fmt.Errorf("%s: %w", s.h.Name(), err)
							return
						}
						conns <- c
					}()
				}
				var cs []net.Conn
				for range 2 {
					select {
					case c := <-conns:
						cs = append(cs, c)
					case err := <-errs:
						cancel()
						t.Fatalf("round %d: punch %v -> %v failed: %v", round, sides[0].public, sides[1].public, err)
					}
				}
				elapsed := time.Since(start)
				cancel()
				// One kernel connection: what one side writes the other reads.
				fmt.Fprintf(cs[0], "hello %d\n", round)
				line, err := bufio.NewReader(cs[1]).ReadString('\n')
				if err != nil || line != fmt.Sprintf("hello %d\n", round) {
					t.Fatalf("round %d: read %q, %v", round, line, err)
				}
				t.Logf("round %d: punched %v <-> %v in %v", round, cs[0].RemoteAddr(), cs[1].RemoteAddr(), elapsed)
				for _, c := range cs {
					c.Close()
				}
			}
		})
	}
}

func TestSymmetricNAT(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	sym := must[*natlab.Router](t)(l.AddRouter(ctx, "sym", natlab.NATSymmetric))
	rnd := must[*natlab.Router](t)(l.AddRouter(ctx, "rnd", natlab.NATSymmetricRandom))
	eim := must[*natlab.Router](t)(l.AddRouter(ctx, "eim", natlab.NATDrop))
	ps := must[*natlab.Host](t)(l.AddPeer(ctx, "ps", sym))
	pr := must[*natlab.Host](t)(l.AddPeer(ctx, "pr", rnd))
	pe := must[*natlab.Host](t)(l.AddPeer(ctx, "pe", eim))
	other := must[*natlab.Host](t)(l.AddPublicHost(ctx, "stun2"))
	serveAddrEcho(t, l.Rendezvous(), "tcp", ":3478")
	serveAddrEcho(t, other, "tcp", ":3478")

	mapped := func(h *natlab.Host) (netip.AddrPort, netip.AddrPort) {
		local := netip.MustParseAddrPort("0.0.0.0:41000")
		a, c1, err := observe(ctx, h, local, hostPort(l.Rendezvous().Addr(), 3478))
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		b, c2, err := observe(ctx, h, local, hostPort(other.Addr(), 3478))
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		return a, b
	}
	// fully-random and random both give every destination its own port.
	for _, h := range []*natlab.Host{ps, pr} {
		if a, b := mapped(h); a.Port() == b.Port() {
			t.Errorf("%v NAT: both destinations saw port %d, want different ports (%v, %v)", h.Router().Kind(), a.Port(), a, b)
		} else {
			t.Logf("%v NAT: %v and %v", h.Router().Kind(), a, b)
		}
	}
	// The control: the home NAT maps endpoint-independently.
	if a, b := mapped(pe); a != b {
		t.Errorf("drop NAT: destinations saw %v and %v, want one mapping", a, b)
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	r := must[*natlab.Router](t)(l.AddRouter(ctx, "r", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", r))
	serveAddrEcho(t, l.Rendezvous(), "tcp", ":7000")
	const oneWay = 50 * time.Millisecond
	if err := l.SetDelay(r, oneWay); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, c, err := observe(ctx, p, netip.AddrPort{}, hostPort(l.Rendezvous().Addr(), 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// connect + the server's first line: two round trips.
	if d := time.Since(start); d < 4*oneWay {
		t.Errorf("connect and greeting took %v, want >= %v", d, 4*oneWay)
	}
	br := bufio.NewReader(c)
	var best time.Duration
	for i := range 5 {
		start := time.Now()
		fmt.Fprintf(c, "ping %d\n", i)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	if best < 2*oneWay {
		t.Errorf("RTT %v across a %v one-way link, want >= %v", best, oneWay, 2*oneWay)
	}
	t.Logf("RTT %v with %v one-way", best, oneWay)

	// A host's link is shaped too, and delays add up along the path.
	const rdvDelay = 30 * time.Millisecond
	if err := l.SetDelay(l.Rendezvous(), rdvDelay); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	fmt.Fprintf(c, "ping\n")
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if d, want := time.Since(start), 2*(oneWay+rdvDelay); d < want {
		t.Errorf("RTT %v across %v + %v one-way, want >= %v", d, oneWay, rdvDelay, want)
	} else {
		t.Logf("RTT %v with %v + %v one-way", d, oneWay, rdvDelay)
	}
	if err := l.SetDelay(l.Rendezvous(), 0); err != nil {
		t.Fatal(err)
	}

	// A burst of paced echoes all come back, in order (how long they
	// take, about one RTT rather than 50, is BenchmarkDelayBurst's).
	c.SetReadDeadline(time.Now().Add(60 * time.Second)) // only against a hang
	if err := echoBurst(c, br, 50); err != nil {
		t.Fatal(err)
	}
}

// echoBurst writes n numbered lines 1 ms apart to an echo and reads them
// back, in order.
func echoBurst(c net.Conn, br *bufio.Reader, n int) error {
	werr := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := fmt.Fprintf(c, "burst %d\n", i); err != nil {
				werr <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		werr <- nil
	}()
	for i := range n {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("echo %d of %d: %w", i, n, err)
		}
		if want := fmt.Sprintf("burst %d\n", i); line != want {
			return fmt.Errorf("echo %d of %d: %q, want %q", i, n, line, want)
		}
	}
	return <-werr
}

// BenchmarkDelayBurst is how the delay stage handles a burst: 50 echoes
// written 1 ms apart across a 50 ms one-way link. Each packet waits for its
// own due time, not behind the others, so burst-ms is about one RTT plus
// the 50 ms of writing (burst-rtts about 1.5); a stage that serialized
// packets would take about 50 RTTs.
func BenchmarkDelayBurst(b *testing.B) {
	if err := natlab.Check().Err(); err != nil {
		b.Skip(err)
	}
	ctx := b.Context()
	l, err := natlab.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r, err := l.AddRouter(ctx, "r", natlab.NATDrop)
	if err != nil {
		b.Fatal(err)
	}
	p, err := l.AddPeer(ctx, "p", r)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := l.Rendezvous().Listen(ctx, "tcp", ":7000")
	if err != nil {
		b.Fatal(err)
	}
	testnet.Serve(b, ln, func(c net.Conn) { io.Copy(c, c) })
	const oneWay = 50 * time.Millisecond
	if err := l.SetDelay(r, oneWay); err != nil {
		b.Fatal(err)
	}
	c, err := p.Dial(ctx, "tcp", hostPort(l.Rendezvous().Addr(), 7000))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		if err := echoBurst(c, br, 50); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "burst-ms")
	b.ReportMetric(float64(per)/float64(2*oneWay), "burst-rtts")
}

func TestLoss(t *testing.T) {
	t.Parallel()
	natlab.Require(t)
	l, err := natlab.New(t.Context(), natlab.WithLossSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := t.Context()
	r := must[*natlab.Router](t)(l.AddRouter(ctx, "r", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", r))
	const loss, n = 0.3, 1000
	if err := l.SetLoss(r, loss); err != nil {
		t.Fatal(err)
	}
	var srv net.PacketConn
	if err := l.Rendezvous().Do(func() (err error) {
		srv, err = net.ListenPacket("udp4", ":9000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	received := make(chan int)
	go func() {
		count := 0
		buf := make([]byte, 64)
		// The first packet may take a while on a loaded machine (the
		// sender's namespace thread, neighbour discovery); after it, a
		// pause of 500 ms means the sender is done.
		wait := 10 * time.Second
		for {
			srv.SetReadDeadline(time.Now().Add(wait))
			wait = 500 * time.Millisecond
			if _, _, err := srv.ReadFrom(buf); err != nil {
				received <- count
				return
			}
			count++
		}
	}()
	c := must[net.Conn](t)(p.Dial(ctx, "udp4", hostPort(l.Rendezvous().Addr(), 9000)))
	defer c.Close()
	for i := range n {
		fmt.Fprintf(c, "%d", i)
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // stay clear of socket buffer limits
		}
	}
	got := <-received
	rate := 1 - float64(got)/n
	t.Logf("loss %.3f configured, %.3f measured (%d/%d received)", loss, rate, got, n)
	if rate < loss-0.1 || rate > loss+0.1 {
		t.Errorf("measured loss %.3f, want %.1f ± 0.1", rate, loss)
	}
}

// TestScenariosBuild builds every cell of the matrix and checks both peers
// reach the rendezvous host in the scenario's family.
func TestScenariosBuild(t *testing.T) {
	t.Parallel()
	for _, sc := range natlab.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			natlab.Require(t)
			start := time.Now()
			p, err := sc.Build(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			t.Logf("built in %v", time.Since(start))
			serveAddrEcho(t, p.Rendezvous(), "tcp", ":7000")
			for _, h := range []*natlab.Host{p.A, p.B} {
				_, c, err := observe(t.Context(), h, netip.AddrPort{}, hostPort(p.RendezvousAddr(), 7000))
				if err != nil {
					t.Fatalf("%s -> rendezvous: %v", h.Name(), err)
				}
				c.Close()
			}
		})
	}
}

// TestTeardown is deliberately not parallel: top-level parallel tests are
// paused until the sequential ones finish, so while it runs no other lab
// of this process exists and "no namespace of this pid" is exact.
func TestTeardown(t *testing.T) {
	natlab.Require(t)
	mine := fmt.Sprintf("tpl-%d-", os.Getpid())
	var sleeper *exec.Cmd
	// A test that ends abnormally: Cleanup must still run. SkipNow leaves
	// through runtime.Goexit exactly like FailNow, without failing us.
	t.Run("aborted", func(t *testing.T) {
		l := newLab(t)
		r := must[*natlab.Router](t)(l.AddRouter(t.Context(), "r", natlab.NATReject))
		p := must[*natlab.Host](t)(l.AddPeer(t.Context(), "p", r))
		if err := l.SetDelay(r, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		// A process left running, and a socket left open, in the lab.
		sleeper = p.Command(context.Background(), "sleep", "600")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Listen(t.Context(), "tcp", ":7000"); err != nil {
			t.Fatal(err)
		}
		if got := netnsWithPrefix(t, mine); len(got) != 4 {
			t.Fatalf("namespaces while up: %v, want internet, rendezvous, r, p", got)
		}
		t.SkipNow()
	})
	if leftover := netnsWithPrefix(t, mine); len(leftover) > 0 {
		t.Errorf("namespaces left behind: %v", leftover)
	}
	if sleeper == nil {
		t.Fatal("the aborted test did not get as far as starting a process")
	}
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the process started in the lab survived Close")
	}

	// A scenario that fails half way through Build cleans up after itself.
	bad := natlab.Scenario{Name: "bad", A: natlab.Side{NAT: natlab.NATNone}, SameNAT: true}
	if p, err := bad.Build(t.Context()); err == nil {
		p.Close()
		t.Fatal("SameNAT without a NAT built")
	} else {
		t.Log(err)
	}
	if leftover := netnsWithPrefix(t, mine); len(leftover) > 0 {
		t.Errorf("namespaces left behind by a failed Build: %v", leftover)
	}
}

func netnsWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			found = append(found, e.Name())
		}
	}
	return found
}

// BenchmarkScenarioBuild is the lab's setup and teardown cost: the demo's
// two-NAT topology (internet, rendezvous, two routers, two peers: six
// namespaces) built, then closed. up-ms and down-ms are per lab.
func BenchmarkScenarioBuild(b *testing.B) {
	if err := natlab.Check().Err(); err != nil {
		b.Skip(err)
	}
	sc, err := natlab.Lookup("drop×drop")
	if err != nil {
		b.Fatal(err)
	}
	var up, down time.Duration
	for b.Loop() {
		start := time.Now()
		p, err := sc.Build(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		up, down = up+mid.Sub(start), down+time.Since(mid)
	}
	b.ReportMetric(float64(up.Microseconds())/1000/float64(b.N), "up-ms")
	b.ReportMetric(float64(down.Microseconds())/1000/float64(b.N), "down-ms")
}

// BenchmarkCommand is the cost of starting a program inside a namespace
// (Host.Command re-executes this binary, which enters the namespace and
// execs the program) against starting it directly.
func BenchmarkCommand(b *testing.B) {
	if err := natlab.Check().Err(); err != nil {
		b.Skip(err)
	}
	l, err := natlab.New(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.Run("in-namespace", func(b *testing.B) {
		for b.Loop() {
			if err := l.Rendezvous().Command(b.Context(), "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if err := exec.CommandContext(b.Context(), "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
