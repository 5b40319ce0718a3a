package ingress_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/tcpunch/tcpunch/internal/ingress"
)

// counts records the PROXY outcomes a listener reports.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(r string) { c.mu.Lock(); c.m[r]++; c.mu.Unlock() }
func (c *counts) get(r string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[r]
}

func proxyListener(t *testing.T, trusted string, opts ...ingress.Option) (net.Listener, *counts) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := ingress.ParsePrefixes([]string{trusted})
	if err != nil {
		t.Fatal(err)
	}
	cs := &counts{m: map[string]int{}}
	ln := ingress.ProxyListener(raw, pfx, append([]ingress.Option{ingress.WithCounter(cs.add)}, opts...)...)
	t.Cleanup(func() { ln.Close() })
	return ln, cs
}

// dialFrom connects to ln from the loopback address src.
func dialFrom(t *testing.T, ln net.Listener, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func header(src string) *proxyproto.Header {
	return &proxyproto.Header{
		Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		DestinationAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.1:3478")),
	}
}

type accepted struct {
	c   net.Conn
	err error
}

func acceptAsync(ln net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() { c, err := ln.Accept(); ch <- accepted{c, err} }()
	return ch
}

func within(t *testing.T, ch <-chan accepted, d time.Duration) net.Conn {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Accept: %v", a.err)
		}
		t.Cleanup(func() { a.c.Close() })
		return a.c
	case <-time.After(d):
		t.Fatalf("nothing accepted within %v", d)
		return nil
	}
}

// expectClosed checks that the server side closed c without sending data.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("connection not closed by the listener: read %d, %v", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after 10 s")
	}
}

func TestProxyHeaderFromTrustedSourceIsTheRemote(t *testing.T) {
	ln, cs := proxyListener(t, "127.0.0.1")
	ch := acceptAsync(ln)
	c := dialFrom(t, ln, "127.0.0.1")
	if _, err := header("198.51.100.7:4242").WriteTo(c); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	sc := within(t, ch, 10*time.Second)
	if got := sc.RemoteAddr().String(); got != "198.51.100.7:4242" {
		t.Fatalf("RemoteAddr = %s, want the header's source 198.51.100.7:4242", got)
	}
	buf := make([]byte, 5)
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("data after the header: %q, %v", buf, err)
	}
	// A proxied connection must not offer its socket: the kernel's RTT
	// would be the balancer's, not the peer's.
	if _, ok := sc.(syscall.Conn); ok {
		t.Error("a proxied connection offers syscall.Conn")
	}
	if cs.get("ok") != 1 {
		t.Errorf("counts %v, want ok 1", cs.m)
	}
}

func TestProxyHeaderMissingFromTrustedSourceIsRefused(t *testing.T) {
	ln, cs := proxyListener(t, "127.0.0.0/8", ingress.WithHeaderTimeout(300*time.Millisecond))
	ch := acceptAsync(ln)
	// A STUN Binding request instead of a header: refused at once.
	c := dialFrom(t, ln, "127.0.0.1")
	c.Write([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	expectClosed(t, c)
	// Silence: refused after the header timeout.
	start := time.Now()
	expectClosed(t, dialFrom(t, ln, "127.0.0.1"))
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("silent connection closed after %v, before the 300 ms header timeout", el)
	}
	select {
	case a := <-ch:
		t.Fatalf("a connection without header was accepted: %v %v", a.c, a.err)
	default:
	}
	if cs.get("missing") != 2 {
		t.Errorf("counts %v, want missing 2", cs.m)
	}
}

func TestProxyHeaderFromUntrustedSourceIsRefused(t *testing.T) {
	ln, cs := proxyListener(t, "127.0.0.2/32")
	ch := acceptAsync(ln)
	c := dialFrom(t, ln, "127.0.0.1")
	header("198.51.100.7:4242").WriteTo(c)
	expectClosed(t, c)

	// Without a header, an untrusted source is an ordinary client.
	d := dialFrom(t, ln, "127.0.0.1")
	d.Write([]byte("plain"))
	sc := within(t, ch, 10*time.Second)
	if got, want := sc.RemoteAddr().String(), d.LocalAddr().String(); got != want {
		t.Fatalf("RemoteAddr = %s, want the socket's %s", got, want)
	}
	buf := make([]byte, 5)
	sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "plain" {
		t.Fatalf("data: %q, %v (the bytes read to look for a header must not be lost)", buf, err)
	}
	if _, ok := sc.(syscall.Conn); !ok {
		t.Error("a direct connection does not offer syscall.Conn (the server loses the kernel's RTT)")
	}
	if cs.get("untrusted") != 1 || cs.get("direct") != 1 {
		t.Errorf("counts %v, want untrusted 1, direct 1", cs.m)
	}
}

// A connection that never sends its header does not stall the others, and
// pending header reads are bounded.
func TestProxySilentConnectionsDoNotStallAccept(t *testing.T) {
	ln, cs := proxyListener(t, "127.0.0.1", ingress.WithHeaderTimeout(time.Minute), ingress.WithMaxPending(2))
	ch := acceptAsync(ln)
	dialFrom(t, ln, "127.0.0.1") // silent
	time.Sleep(100 * time.Millisecond)
	c := dialFrom(t, ln, "127.0.0.1")
	header("198.51.100.8:1").WriteTo(c)
	if got := within(t, ch, 10*time.Second).RemoteAddr().String(); got != "198.51.100.8:1" {
		t.Fatalf("accepted %s", got)
	}
	// Three more silent ones: with one slot left (the first silent one
	// holds the other), at least two are closed at once.
	for range 3 {
		dialFrom(t, ln, "127.0.0.1")
	}
	deadline := time.Now().Add(10 * time.Second)
	for cs.get("overload") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if cs.get("overload") < 2 {
		t.Errorf("counts %v, want overload >= 2 with 2 pending slots and 4 silent connections", cs.m)
	}
}

func TestProxyListenerCloseEndsAccept(t *testing.T) {
	ln, _ := proxyListener(t, "127.0.0.1")
	ch := acceptAsync(ln)
	ln.Close()
	select {
	case a := <-ch:
		if a.err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ingress.ParsePrefixes([]string{"10.0.0.0/8, 192.0.2.7", "fd00::/8", "::ffff:127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "127.0.0.1/32"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %v, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "10.0.0.1/x"} {
		if _, err := ingress.ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func watchListener(t *testing.T, log *bytes.Buffer) net.Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := ingress.WatchBalancer(raw, ingress.WithLogger(slog.New(slog.NewTextHandler(log, nil))),
		ingress.WithWatch(8, 0.8, time.Hour))
	t.Cleanup(func() { ln.Close() })
	return ln
}

func acceptN(t *testing.T, ln net.Listener, srcs []string) {
	t.Helper()
	for _, src := range srcs {
		ch := acceptAsync(ln)
		dialFrom(t, ln, src)
		within(t, ch, 10*time.Second)
	}
}

func TestWatchBalancerWarnsWhenOneAddressDominates(t *testing.T) {
	// The watcher logs from Accept, whose result each acceptN step waits
	// for: the buffer needs no lock.
	var log bytes.Buffer
	ln := watchListener(t, &log)
	srcs := []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"}
	acceptN(t, ln, srcs)
	out := log.String()
	if !strings.Contains(out, "most peers come from one address") || !strings.Contains(out, "addr=127.0.0.1") {
		t.Fatalf("no warning after 7 of 8 connections from 127.0.0.1; log:\n%s", out)
	}
	// Once per hour, not once per window.
	acceptN(t, ln, srcs)
	if n := strings.Count(log.String(), "most peers"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
}

func TestWatchBalancerQuietWithManyAddresses(t *testing.T) {
	var log bytes.Buffer
	ln := watchListener(t, &log)
	var srcs []string
	for i := range 16 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i%4)}).String())
	}
	acceptN(t, ln, srcs)
	if out := log.String(); out != "" {
		t.Fatalf("warned with connections from 4 addresses evenly:\n%s", out)
	}
}
