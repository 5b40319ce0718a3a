package punch

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// Testing hooks (see config).
func withoutListener() Option { return func(c *config) { c.noListen = true } }
func withSelfDial() Option    { return func(c *config) { c.dialSelf = true } }

var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.IPv6Loopback()
)

func newTag(t testing.TB) [16]byte {
	var tag [16]byte
	if _, err := rand.Read(tag[:]); err != nil {
		t.Fatal(err)
	}
	return tag
}

func newEndpoint(t testing.TB, local netip.AddrPort, opts ...Option) *Endpoint {
	t.Helper()
	e, err := NewEndpoint(context.Background(), local, opts...)
	if err != nil {
		t.Fatalf("NewEndpoint(%v): %v", local, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// withPort is a's address with port, for candidates of an endpoint that
// listens on the unspecified address.
func withPort(a netip.Addr, e *Endpoint) netip.AddrPort {
	return netip.AddrPortFrom(a, e.Addr().Port())
}

type punchResult struct {
	conn *Conn
	err  error
}

// punchPair runs a (controlling) and b (controlled) against each other's
// candidates at the same time and returns both results.
func punchPair(ctx context.Context, t testing.TB, a, b *Endpoint, candsA, candsB []netip.AddrPort) (ra, rb punchResult) {
	t.Helper()
	tag := newTag(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ra.conn, ra.err = a.Punch(ctx, Session{Candidates: candsA, Role: RoleControlling, Tag: tag})
	}()
	go func() {
		defer wg.Done()
		rb.conn, rb.err = b.Punch(ctx, Session{Candidates: candsB, Role: RoleControlled, Tag: tag})
	}()
	wg.Wait()
	return ra, rb
}

// mustPair is punchPair where both sides must succeed.
func mustPair(ctx context.Context, t testing.TB, a, b *Endpoint, candsA, candsB []netip.AddrPort) (*Conn, *Conn) {
	t.Helper()
	ra, rb := punchPair(ctx, t, a, b, candsA, candsB)
	if ra.conn != nil {
		t.Cleanup(func() { ra.conn.Close() })
	}
	if rb.conn != nil {
		t.Cleanup(func() { rb.conn.Close() })
	}
	if ra.err != nil || rb.err != nil {
		t.Fatalf("punch: controlling: %v; controlled: %v", ra.err, rb.err)
	}
	return ra.conn, rb.conn
}

// checkSameConnection asserts that both sides hold the two ends of one TCP
// connection and report consistent methods.
func checkSameConnection(t testing.TB, ca, cb *Conn) {
	t.Helper()
	ia, ib := ca.Info(), cb.Info()
	if ia.Local != ib.Remote || ia.Remote != ib.Local {
		t.Fatalf("different connections: A %v→%v, B %v→%v", ia.Local, ia.Remote, ib.Local, ib.Remote)
	}
	want := map[Method]Method{
		MethodSimultaneousOpen: MethodSimultaneousOpen,
		MethodConnect:          MethodAccept,
		MethodAccept:           MethodConnect,
	}
	if w, ok := want[ia.Method]; !ok || ib.Method != w {
		t.Errorf("methods A %v, B %v do not describe one connection", ia.Method, ib.Method)
	}
}

// converse sends a line each way and checks both arrive: the stream carries
// the application's bytes only.
func converse(t testing.TB, ca, cb *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	ca.SetDeadline(deadline)
	cb.SetDeadline(deadline)
	errc := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(cb).ReadString('\n')
		if err != nil {
			errc <- fmt.Errorf("B reading: %w", err)
			return
		}
		if line != "ping from A\n" {
			errc <- fmt.Errorf("B read %q", line)
			return
		}
		_, err = fmt.Fprint(cb, "pong from B\n")
		errc <- err
	}()
	// Through io.Copy, so through Conn.ReadFrom (the source hides its
	// WriterTo): the peer must read the application's bytes, not the
	// link's.
	if _, err := io.Copy(ca, struct{ io.Reader }{strings.NewReader("ping from A\n")}); err != nil {
		t.Fatalf("A writing: %v", err)
	}
	line, err := bufio.NewReader(ca).ReadString('\n')
	if err != nil {
		t.Fatalf("A reading: %v", err)
	}
	if line != "pong from B\n" {
		t.Fatalf("A read %q", line)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	ca.SetDeadline(time.Time{})
	cb.SetDeadline(time.Time{})
}

// leakFree runs body as a subtest, so that its cleanups run first, and
// then fails if goroutines or descriptors have not come back to their level
// before it.
func leakFree(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	check := leakCheck(t)
	t.Run("body", body)
	check()
}

// leakCheck snapshots goroutines and descriptors; the returned function
// fails the test if they have not come back to that level.
func leakCheck(t *testing.T) func() {
	t.Helper()
	g0, f0 := runtime.NumGoroutine(), openFDs()
	return func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), openFDs()
			if g <= g0 && f <= f0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("leak: goroutines %d → %d, open descriptors %d → %d\n%s", g0, g, f0, f, buf)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// server runs a TCP listener on loopback whose every connection is handled by
// fn; it stops with the test.
func server(t testing.TB, fn func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testnet.Serve(t, ln, fn)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// refusedAddr is a loopback address where nothing listens: dials get RST.
func refusedAddr(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

// eventLog collects events for assertions.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) count(kind EventKind, addr netip.AddrPort) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Kind == kind && (!addr.IsValid() || ev.Addr == addr) {
			n++
		}
	}
	return n
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ev := range l.evs {
		fmt.Fprintf(&b, "%s %v attempt=%d method=%v err=%v %s\n", ev.Kind, ev.Addr, ev.Attempt, ev.Method, ev.Err, ev.Detail)
	}
	return b.String()
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func asError(t testing.TB, err error) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *punch.Error", err, err)
	}
	return pe
}
