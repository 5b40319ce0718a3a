package punch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// rendezvousAt runs a rendezvous server on addr ("127.0.0.1:0" for any
// port) until the returned stop function or the end of the test.
func rendezvousAt(t *testing.T, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := rendezvous.NewServer()
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func acceptConn(t *testing.T, ln *Listener) *Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		return r.c.(*Conn)
	case <-time.After(60 * time.Second):
		t.Fatal("Accept: no connection")
	}
	return nil
}

func TestListenDial(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx := testCtx(t)
		rv, _ := rendezvousAt(t, "127.0.0.1:0")
		var evs eventLog
		ln, err := Listen(ctx, rv, "svc", WithEvents(evs.add), WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dialed, err := Dial(ctx, rv, "svc", WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		defer dialed.Close()
		accepted := acceptConn(t, ln)
		defer accepted.Close()
		checkSameConnection(t, dialed, accepted)
		converse(t, dialed, accepted)

		if got := accepted.Info().Local.Port(); got != ln.Addr().(*net.TCPAddr).AddrPort().Port() {
			t.Errorf("accepted conn on local port %d, want the listener's reused port %v", got, ln.Addr())
		}
		var any netip.AddrPort
		for _, k := range []EventKind{EventRegistered, EventPeerInfo, EventConnected} {
			if evs.count(k, any) != 1 {
				t.Errorf("%d %v events, want 1:\n%v", evs.count(k, any), k, &evs)
			}
		}
	})
}

func TestSeveralDialersOneListener(t *testing.T) {
	ctx := testCtx(t)
	rv, _ := rendezvousAt(t, "127.0.0.1:0")
	ln, err := Listen(ctx, rv, "busy", WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	const dialers = 5
	// Each dialer sends its number; the listener echoes it back prefixed,
	// so a mixed-up pairing shows.
	handled := make(chan struct{}, dialers)
	testnet.Serve(t, ln, func(c net.Conn) {
		defer func() { handled <- struct{}{} }()
		b, _ := io.ReadAll(c)
		fmt.Fprintf(c, "echo %s", b)
		// A confirmed stream ends with Finish; a bare Close would be a
		// truncation for the dialer.
		if _, err := c.(*Conn).Finish(ctx); err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for i := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(ctx, rv, "busy", WithInsecure())
			if err != nil {
				errs <- fmt.Errorf("dialer %d: %w", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "%d", i)
			c.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != fmt.Sprintf("echo %d", i) {
				errs <- fmt.Errorf("dialer %d got %q, %v", i, got, err)
			}
			if d, err := c.Finish(ctx); err != nil || !d.Complete() {
				errs <- fmt.Errorf("dialer %d: %v (%v)", i, err, d)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range dialers {
		<-handled // the listener's Finish, which reads the last ACK
	}
}

func TestDialUnknownName(t *testing.T) {
	ctx := testCtx(t)
	rv, _ := rendezvousAt(t, "127.0.0.1:0")
	_, err := Dial(ctx, rv, "nobody", WithInsecure())
	if !errors.Is(err, ErrRendezvous) || !errors.Is(err, rendezvous.ErrUnknownName) {
		t.Fatalf("Dial to an unknown name: %v; want ErrRendezvous and rendezvous.ErrUnknownName", err)
	}
}

func TestListenNameTaken(t *testing.T) {
	ctx := testCtx(t)
	rv, _ := rendezvousAt(t, "127.0.0.1:0")
	first, err := Listen(ctx, rv, "mine", WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Listen(ctx, rv, "mine", WithInsecure())
	if !errors.Is(err, ErrRendezvous) || !errors.Is(err, rendezvous.ErrNameTaken) {
		t.Fatalf("second Listen on a taken name: %v; want ErrRendezvous and rendezvous.ErrNameTaken", err)
	}
}

func TestDialUnreachableRendezvous(t *testing.T) {
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Dial retries a server that is down until ctx ends.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := Dial(ctx, addr, "x", WithInsecure()); !errors.Is(err, ErrRendezvous) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial via a dead rendezvous: %v; want ErrRendezvous and connection refused", err)
	}
}

// TestListenSurvivesServerRestart: the listener's registration comes back
// by itself when the rendezvous server restarts on the same address.
func TestListenSurvivesServerRestart(t *testing.T) {
	ctx := testCtx(t)
	rv, stop := rendezvousAt(t, "127.0.0.1:0")
	ln, err := Listen(ctx, rv, "phoenix", WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop()
	rendezvousAt(t, rv)

	// Until the listener has registered again, the name is unknown.
	var c *Conn
	for {
		c, err = Dial(ctx, rv, "phoenix", WithInsecure())
		if err == nil {
			break
		}
		if !errors.Is(err, rendezvous.ErrUnknownName) || ctx.Err() != nil {
			t.Fatalf("Dial after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()
	a := acceptConn(t, ln)
	defer a.Close()
	converse(t, c, a)
}

func TestListenerCloseUnblocksAccept(t *testing.T) {
	leakFree(t, func(t *testing.T) {
		ctx := testCtx(t)
		rv, _ := rendezvousAt(t, "127.0.0.1:0")
		ln, err := Listen(ctx, rv, "closing", WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { _, err := ln.Accept(); errc <- err }()
		time.Sleep(50 * time.Millisecond)
		ln.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Accept still blocked after Close")
		}
	})
}
