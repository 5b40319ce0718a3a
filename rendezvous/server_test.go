package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/sockopt"
)

var anyLocal = ap("127.0.0.1:0")

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RENDEZVOUS_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer serves on a fresh loopback port until the test ends, and
// checks that Serve then returns ErrServerClosed.
func startServer(t testing.TB, opts ...ServerOption) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, opts...), ln.Addr().String()
}

func serveOn(t testing.TB, ln net.Listener, opts ...ServerOption) *Server {
	t.Helper()
	srv := NewServer(append([]ServerOption{WithLogger(testLogger(t)), withoutRateLimits()}, opts...)...)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reusedPort binds a reusable listener as punch's Endpoint would, and
// returns its address: the clients dial from that same port.
func reusedPort(t testing.TB) netip.AddrPort {
	t.Helper()
	ln, err := sockopt.ListenConfig().Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func TestRegisterConnect(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	lLocal, dLocal := reusedPort(t), reusedPort(t)
	lHost := []netip.AddrPort{ap("127.0.0.2:4001"), ap("[::1]:4002"), lLocal}
	dHost := []netip.AddrPort{ap("127.0.0.3:5001")}

	reg, err := Register(ctx, addr, lLocal, "alice", lHost)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if reg.Observed() != lLocal {
		t.Errorf("listener observed %v, want its reused port %v", reg.Observed(), lLocal)
	}
	dPI, closer, err := Connect(ctx, addr, dLocal, "alice", dHost)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	lPI, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if !dPI.Controlling || lPI.Controlling {
		t.Errorf("roles: dialer controlling=%v, listener controlling=%v", dPI.Controlling, lPI.Controlling)
	}
	if dPI.Tag != lPI.Tag || dPI.Tag == ([16]byte{}) {
		t.Errorf("tags differ or are zero: %x %x", dPI.Tag, lPI.Tag)
	}
	if dPI.Name != "alice" || lPI.Name != "alice" {
		t.Errorf("names %q %q", dPI.Name, lPI.Name)
	}
	if dPI.Observed != dLocal || lPI.Observed != lLocal {
		t.Errorf("observed: dialer %v (want %v), listener %v (want %v)", dPI.Observed, dLocal, lPI.Observed, lLocal)
	}
	// Observed first, then host candidates, minus the duplicate of the
	// observed one (no NAT on loopback).
	wantD := []netip.AddrPort{lLocal, ap("127.0.0.2:4001"), ap("[::1]:4002")}
	wantL := []netip.AddrPort{dLocal, ap("127.0.0.3:5001")}
	if fmt.Sprint(dPI.Candidates) != fmt.Sprint(wantD) {
		t.Errorf("dialer got candidates %v, want %v", dPI.Candidates, wantD)
	}
	if fmt.Sprint(lPI.Candidates) != fmt.Sprint(wantL) {
		t.Errorf("listener got candidates %v, want %v", lPI.Candidates, wantL)
	}

	// A second session gets a fresh tag.
	dPI2, closer2, err := Connect(ctx, addr, anyLocal, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The dialer stays until the listener has its peer info: the server
	// sends none for a dialer that already left.
	lPI2, err := reg.Next(ctx)
	closer2.Close()
	if err != nil {
		t.Fatal(err)
	}
	if dPI2.Tag != lPI2.Tag || dPI2.Tag == dPI.Tag {
		t.Errorf("second session tags %x %x (first %x)", dPI2.Tag, lPI2.Tag, dPI.Tag)
	}

	reg.Close()
	if _, err := reg.Next(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Next after Close: %v, want net.ErrClosed", err)
	}
}

func TestManyDialersAtOnce(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	reg, err := Register(ctx, addr, anyLocal, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	const n = 16
	tags := make(chan [16]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pi, c, err := Connect(ctx, addr, anyLocal, "svc", []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 9, byte(i + 1)}), 1000)})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			tags <- pi.Tag
		}()
	}
	seen := make(map[[16]byte]bool)
	for range n {
		pi, err := reg.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen[pi.Tag] = true
	}
	wg.Wait()
	close(tags)
	for tag := range tags {
		if !seen[tag] {
			t.Errorf("dialer tag %x never reached the listener", tag)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct sessions, want %d", len(seen), n)
	}
}

func TestUnknownName(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	_, _, err := Connect(ctx, addr, anyLocal, "nobody", nil)
	if !errors.Is(err, ErrUnknownName) {
		t.Fatalf("err = %v, want ErrUnknownName", err)
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeUnknownName {
		t.Errorf("err = %#v, want *ServerError 404", err)
	}
	if errors.Is(err, ErrNameTaken) {
		t.Error("404 matches ErrNameTaken")
	}
	// A name the server's rule refuses is a 400, not a 404.
	_, _, err = Connect(ctx, addr, anyLocal, "bad name!", nil)
	if !errors.As(err, &se) || se.Code != CodeBadRequest {
		t.Errorf("bad name: %v, want 400", err)
	}
}

func TestNameTakenThenFreed(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	first, err := Register(ctx, addr, anyLocal, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Register(ctx, addr, anyLocal, "bob", nil)
	if !errors.Is(err, ErrNameTaken) {
		t.Fatalf("second registration: %v, want ErrNameTaken", err)
	}
	first.Close()
	// The server frees the name when it sees the connection close: poll.
	for {
		second, err := Register(ctx, addr, anyLocal, "bob", nil)
		if err == nil {
			second.Close()
			return
		}
		if !errors.Is(err, ErrNameTaken) || ctx.Err() != nil {
			t.Fatalf("after the first went away: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The server restarts on the same address while a listener is registered:
// the Registration reconnects, registers again, and Next delivers.
func TestRegisterSurvivesServerRestart(t *testing.T) {
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv1 := NewServer(WithLogger(testLogger(t)))
	served := make(chan error, 1)
	go func() { served <- srv1.Serve(ln) }()

	reg, err := Register(ctx, addr, reusedPort(t), "phoenix", nil, WithBackoff(20*time.Millisecond, 200*time.Millisecond), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := srv1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}

	var ln2 net.Listener
	for ln2 == nil {
		if ln2, err = net.Listen("tcp", addr); err != nil && ctx.Err() != nil {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	serveOn(t, ln2)

	var pi PeerInfo
	var dialer io.Closer
	for {
		pi, dialer, err = Connect(ctx, addr, anyLocal, "phoenix", nil)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnknownName) || ctx.Err() != nil {
			t.Fatalf("connect after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The dialer stays until the listener has its peer info: the server
	// sends none for a dialer that already left.
	got, err := reg.Next(ctx)
	dialer.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != pi.Tag {
		t.Errorf("listener tag %x, dialer tag %x", got.Tag, pi.Tag)
	}
}

// rawConn speaks the protocol by hand, to play misbehaving clients.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (r *rawConn) send(msg *message) {
	r.t.Helper()
	if _, err := r.nc.Write(encodeForTest(r.t, msg)); err != nil {
		r.t.Fatal(err)
	}
}

// recv returns the next message other than a server Ping (answered).
func (r *rawConn) recv() (*message, []stun.AttrType, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		raw, err := readFrame(r.nc, nil, maxWireMessageSize, nil)
		if err != nil {
			return nil, nil, err
		}
		msg, unknown, err := decodeMessage(raw)
		if err != nil {
			return nil, nil, err
		}
		if msg.Type == stun.NewType(methodPing, stun.ClassRequest) {
			continue
		}
		return msg, unknown, nil
	}
}

// expectClosed waits for the server to close the connection (EOF or reset).
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := r.nc.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.t.Fatal("server did not close the connection")
		}
		return
	}
}

// Bad clients run beside a good pair; the pair must not notice.
func TestBadClientsDoNotDisturbGoodPair(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t, WithReadTimeout(300*time.Millisecond), WithMaxMessageSize(512))

	reg, err := Register(ctx, addr, anyLocal, "good", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// The good pair keeps pairing for as long as the bad clients run.
	stop := make(chan struct{})
	goodDone := make(chan error, 1)
	var pairs int
	go func() {
		for {
			select {
			case <-stop:
				goodDone <- nil
				return
			default:
			}
			pi, c, err := Connect(ctx, addr, anyLocal, "good", nil)
			if err != nil {
				goodDone <- fmt.Errorf("connect %d: %w", pairs, err)
				return
			}
			// A dialer that leaves before the listener's peer info went
			// out gets none sent (cancel.go): close after it arrived.
			lpi, err := reg.Next(ctx)
			c.Close()
			if err != nil || lpi.Tag != pi.Tag {
				goodDone <- fmt.Errorf("next %d: %v (tags %x %x)", pairs, err, lpi.Tag, pi.Tag)
				return
			}
			pairs++
		}
	}()

	bad := map[string]func(t *testing.T){
		"garbage": func(t *testing.T) {
			r := dialRaw(t, addr)
			r.nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			r.expectClosed()
		},
		"byte at a time": func(t *testing.T) {
			r := dialRaw(t, addr)
			raw := encodeForTest(t, &message{Type: stun.BindingRequest, TxID: newTxID()})
			for _, b := range raw {
				if _, err := r.nc.Write([]byte{b}); err != nil {
					return // cut: fine
				}
				time.Sleep(50 * time.Millisecond)
			}
			r.expectClosed()
		},
		"never-finishing header": func(t *testing.T) {
			r := dialRaw(t, addr)
			r.nc.Write([]byte{0x00, 0x01, 0x00})
			r.expectClosed()
		},
		"silent": func(t *testing.T) {
			dialRaw(t, addr).expectClosed()
		},
		"oversized length": func(t *testing.T) {
			r := dialRaw(t, addr)
			raw := encodeForTest(t, &message{Type: stun.BindingRequest, TxID: newTxID()})
			raw[2], raw[3] = 0xFF, 0xFC
			r.nc.Write(raw)
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeBadRequest {
				t.Errorf("oversized: %+v %v, want a 400", msg, err)
			}
			r.expectClosed()
		},
		"length not a multiple of 4": func(t *testing.T) {
			r := dialRaw(t, addr)
			raw := encodeForTest(t, &message{Type: stun.BindingRequest, TxID: newTxID()})
			raw[2], raw[3] = 0, 3
			r.nc.Write(raw)
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeBadRequest {
				t.Errorf("length 3: %+v %v, want a 400", msg, err)
			}
			r.expectClosed()
		},
		"unknown required attribute": func(t *testing.T) {
			r := dialRaw(t, addr)
			m := stun.New()
			m.Type = stun.BindingRequest
			m.TransactionID = newTxID()
			m.WriteHeader()
			m.Add(0x7ABC, []byte{1, 2, 3, 4})
			m.Add(0xFABC, []byte{1}) // optional: ignored
			r.nc.Write(m.Raw)
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeUnknownAttribute || fmt.Sprint(msg.UnknownIn) != fmt.Sprint([]stun.AttrType{0x7ABC}) {
				t.Errorf("got %+v %v, want 420 listing 0x7ABC", msg, err)
			}
			// The connection stays usable.
			r.send(&message{Type: stun.BindingRequest, TxID: newTxID()})
			if msg, _, err := r.recv(); err != nil || msg.Type != stun.BindingSuccess {
				t.Errorf("binding after 420: %+v %v", msg, err)
			}
		},
		"owner proof of a bad length": func(t *testing.T) {
			r := dialRaw(t, addr)
			m := stun.New()
			m.Type = stun.NewType(methodRegister, stun.ClassRequest)
			m.TransactionID = newTxID()
			m.WriteHeader()
			m.Add(attrName, []byte("good"))
			m.Add(attrOwnerProof, []byte("sig"))
			r.nc.Write(m.Raw)
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeBadRequest {
				t.Errorf("got %+v %v, want 400", msg, err)
			}
			r.expectClosed()
		},
		"unknown method": func(t *testing.T) {
			r := dialRaw(t, addr)
			r.send(&message{Type: stun.NewType(0x7AB, stun.ClassRequest), TxID: newTxID()})
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeBadRequest || msg.Type != stun.NewType(0x7AB, stun.ClassErrorResponse) {
				t.Errorf("got %+v %v, want a 400 error response", msg, err)
			}
		},
		"malformed attribute": func(t *testing.T) {
			r := dialRaw(t, addr)
			m := stun.New()
			m.Type = stun.NewType(methodConnect, stun.ClassRequest)
			m.TransactionID = newTxID()
			m.WriteHeader()
			m.Add(attrCandidate, []byte{0, 9})
			r.nc.Write(m.Raw)
			msg, _, err := r.recv()
			if err != nil || msg.Code != CodeBadRequest {
				t.Errorf("got %+v %v, want 400", msg, err)
			}
			r.expectClosed()
		},
		"steals the name": func(t *testing.T) {
			r := dialRaw(t, addr)
			r.send(&message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: "good"})
			if msg, _, err := r.recv(); err != nil || msg.Code != CodeNameTaken {
				t.Errorf("got %+v %v, want 409", msg, err)
			}
		},
	}
	t.Run("bad", func(t *testing.T) {
		for name, f := range bad {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f(t)
			})
		}
	})
	close(stop)
	if err := <-goodDone; err != nil {
		t.Fatal(err)
	}
	if pairs == 0 {
		t.Fatal("the good pair never paired")
	}
	t.Logf("good pair paired %d times beside the bad clients", pairs)
}

// A plain pion STUN client, not ours, gets its address from the server.
func TestPionBindingOverTCP(t *testing.T) {
	_, addr := startServer(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	client, err := stun.NewClient(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var got stun.XORMappedAddress
	var doErr error
	err = client.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint), func(e stun.Event) {
		if e.Error != nil {
			doErr = e.Error
			return
		}
		doErr = got.GetFrom(e.Message)
	})
	if err != nil || doErr != nil {
		t.Fatal(err, doErr)
	}
	want := nc.LocalAddr().(*net.TCPAddr)
	if !got.IP.Equal(want.IP) || got.Port != want.Port {
		t.Errorf("pion client mapped address %v, want %v", got, want)
	}
}

func TestMappedAddress(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	local := reusedPort(t)
	got, err := MappedAddress(ctx, addr, local)
	if err != nil {
		t.Fatal(err)
	}
	if got != local {
		t.Errorf("mapped %v, want %v", got, local)
	}
	// Again at once from the same port: no TIME_WAIT in the way.
	if _, err := MappedAddress(ctx, addr, local); err != nil {
		t.Errorf("second binding from %v: %v", local, err)
	}
}

// A burst of simultaneous connects, each doing a Binding: none refused.
func TestConnectBurst(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	var opts []ServerOption
	spread := runtime.GOOS == "linux" // every 127.x.y.z is ours only on Linux
	if !spread {
		opts = append(opts, WithMaxConnsPerIP(0))
	}
	_, addr := startServer(t, opts...)
	ctx := testCtx(t)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	for i := range n {
		local := anyLocal
		if spread {
			// 25 sources per IP address keeps under the per-IP cap.
			local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i / 25 / 250), byte(i/25%250 + 1)}), 0)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, err := MappedAddress(ctx, addr, local)
			if err == nil && local.Addr() != got.Addr() {
				err = fmt.Errorf("mapped %v from %v", got, local)
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d simultaneous connects+bindings in %v", n, time.Since(t0))
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d failed; first: %v", f, n, firstErr.Load())
	}
}

func TestShutdownSaysGoodbye(t *testing.T) {
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	if srv.Addr() == nil {
		// Serve may not have registered ln yet; wait a little.
		for srv.Addr() == nil && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}
	r := dialRaw(t, addr)
	r.send(&message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: "x"})
	if msg, _, err := r.recv(); err != nil || msg.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("register: %+v %v", msg, err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	msg, _, err := r.recv()
	if err != nil || msg.Type != stun.NewType(methodGoodbye, stun.ClassIndication) || msg.Code != CodeShuttingDown {
		t.Errorf("got %+v %v, want Goodbye 503", msg, err)
	}
	r.expectClosed()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// A listener that stops answering pings loses its name; one that answers
// keeps it across many idle timeouts.
func TestDeadListenerFreed(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t, WithKeepAlive(50*time.Millisecond), WithIdleTimeout(400*time.Millisecond))

	alive, err := Register(ctx, addr, anyLocal, "alive", nil, WithKeepAlive(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()

	dead := dialRaw(t, addr)
	dead.send(&message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: "dead"})
	// Read the success, then never read (or answer) again.
	_ = dead.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if raw, err := readFrame(dead.nc, nil, maxWireMessageSize, nil); err != nil {
		t.Fatal(err)
	} else if msg, _, _ := decodeMessage(raw); msg.Type.Class != stun.ClassSuccessResponse && msg.Type.Method != methodPing {
		t.Fatalf("register: %+v", msg)
	}

	for {
		r, err := Register(ctx, addr, anyLocal, "dead", nil)
		if err == nil {
			r.Close()
			break
		}
		if !errors.Is(err, ErrNameTaken) || ctx.Err() != nil {
			t.Fatalf("waiting for the dead name: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// By now several idle timeouts have passed: the live one is still there.
	if _, c, err := Connect(ctx, addr, anyLocal, "alive", nil); err != nil {
		t.Errorf("live listener lost its name: %v", err)
	} else {
		c.Close()
	}
}

func TestConnsPerIPLimit(t *testing.T) {
	_, addr := startServer(t, WithMaxConnsPerIP(2))
	for range 2 {
		r := dialRaw(t, addr)
		r.send(&message{Type: stun.BindingRequest, TxID: newTxID()})
		if msg, _, err := r.recv(); err != nil || msg.Type != stun.BindingSuccess {
			t.Fatalf("binding: %+v %v", msg, err)
		}
	}
	r := dialRaw(t, addr)
	msg, _, err := r.recv()
	if err != nil || msg.Type.Method != methodGoodbye || msg.Code != CodeTooManyConns {
		t.Errorf("third connection: %+v %v, want Goodbye 429", msg, err)
	}
	r.expectClosed()
}
