package confirm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of a real TCP connection over loopback.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca.(*net.TCPConn), cb.(*net.TCPConn)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type side struct {
	got []byte
	d   Delivery
	err error
}

// runSide writes out, reads until EOF concurrently, then finishes.
func runSide(ctx context.Context, c *Conn, out []byte) side {
	readc := make(chan []byte, 1)
	rerrc := make(chan error, 1)
	go func() {
		got, err := io.ReadAll(c)
		readc <- got
		rerrc <- err
	}()
	var s side
	if _, err := c.Write(out); err != nil {
		s.d, s.err = c.Finish(ctx)
		if s.err == nil {
			s.err = err
		}
		return s
	}
	s.d, s.err = c.Finish(ctx)
	s.got = <-readc
	if err := <-rerrc; err != nil && s.err == nil {
		s.err = err
	}
	return s
}

func both(t *testing.T, a, b HalfCloser, outA, outB []byte) (sa, sb side) {
	t.Helper()
	ctx := testCtx(t)
	ca, cb := New(a), New(b)
	done := make(chan side, 1)
	go func() { done <- runSide(ctx, cb, outB) }()
	sa = runSide(ctx, ca, outA)
	sb = <-done
	return sa, sb
}

func checkComplete(t *testing.T, name string, s side, sent, want []byte) {
	t.Helper()
	if s.err != nil {
		t.Fatalf("%s: %v", name, s.err)
	}
	if !s.d.Complete() || s.d.Sent != uint64(len(sent)) || s.d.Acked != s.d.Sent || s.d.Received != uint64(len(want)) {
		t.Fatalf("%s: delivery %+v", name, s.d)
	}
	if sha256.Sum256(s.got) != sha256.Sum256(want) {
		t.Fatalf("%s: received %d bytes that differ from the %d sent", name, len(s.got), len(want))
	}
}

func TestCompleteTransfer(t *testing.T) {
	for name, sizes := range map[string][2]int{
		"both ways":  {4 << 20, 1 << 20},
		"one way":    {3<<20 + 17, 0},
		"empty":      {0, 0},
		"frame edge": {MaxPayload, MaxPayload + 1},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := tcpPair(t)
			outA, outB := randBytes(t, sizes[0]), randBytes(t, sizes[1])
			sa, sb := both(t, a, b, outA, outB)
			checkComplete(t, "a", sa, outA, outB)
			checkComplete(t, "b", sb, outB, outA)
		})
	}
}

// TestSenderOnly: the sending side never reads; Finish reads the peer's
// FIN and ACK itself.
func TestSenderOnly(t *testing.T) {
	a, b := tcpPair(t)
	ctx := testCtx(t)
	out := randBytes(t, 2<<20)
	done := make(chan side, 1)
	go func() { done <- runSide(ctx, New(b), nil) }()
	ca := New(a)
	if _, err := ca.Write(out); err != nil {
		t.Fatal(err)
	}
	d, err := ca.Finish(ctx)
	if err != nil || d.Acked != uint64(len(out)) {
		t.Fatalf("finish: %+v, %v", d, err)
	}
	sb := <-done
	checkComplete(t, "receiver", sb, nil, out)
}

// TestHalfCloseReply: request, CloseWrite, then the reply still arrives
// and both deliveries are complete.
func TestHalfCloseReply(t *testing.T) {
	a, b := tcpPair(t)
	ctx := testCtx(t)
	ca, cb := New(a), New(b)
	done := make(chan error, 1)
	go func() {
		req, err := io.ReadAll(cb)
		if err == nil {
			_, err = cb.Write(append([]byte("reply to "), req...))
		}
		if err == nil {
			_, err = cb.Finish(ctx)
		}
		done <- err
	}()
	ca.Write([]byte("request"))
	if err := ca.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Write([]byte("late")); !errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	reply, err := io.ReadAll(ca)
	if err != nil || string(reply) != "reply to request" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if d, err := ca.Finish(ctx); err != nil || !d.Complete() {
		t.Fatalf("finish: %+v %v", d, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPeerKilled: the receiver reads part of the stream and dies with a
// reset. The sender's Finish fails and says how much was sent and acked.
func TestPeerKilled(t *testing.T) {
	for _, readFirst := range []int{0, 1 << 20} {
		a, b := tcpPair(t)
		ctx := testCtx(t)
		go func() {
			cb := New(b)
			io.CopyN(io.Discard, cb, int64(readFirst))
			b.SetLinger(0)
			b.Close() // RST: as if killed
		}()
		ca := New(a)
		out := randBytes(t, 8<<20)
		ca.Write(out) // may fail with a reset: the sender does not know yet
		d, err := ca.Finish(ctx)
		var ie *IncompleteError
		if !errors.Is(err, ErrIncomplete) || !errors.As(err, &ie) {
			t.Fatalf("killed after %d: err = %v, want ErrIncomplete", readFirst, err)
		}
		if d.PeerAcked || d.Complete() || d.Sent < uint64(readFirst) {
			t.Fatalf("delivery %+v", d)
		}
		if !strings.Contains(err.Error(), "sent ") || !strings.Contains(err.Error(), "acknowledged none") {
			t.Fatalf("message %q lacks the counts", err)
		}
	}
}

// TestTruncatedByPlainClose: the peer closes its socket without a FIN
// frame (an unwrapped peer, or one that gave up): both directions count
// as incomplete.
func TestTruncatedByPlainClose(t *testing.T) {
	a, b := tcpPair(t)
	ctx := testCtx(t)
	go func() {
		b.Write([]byte{0, 0, 0, 3, 'a', 'b', 'c'}) // one DATA frame, no FIN
		b.CloseWrite()
		io.Copy(io.Discard, b)
	}()
	ca := New(a)
	go ca.Write([]byte("hello"))
	got, err := io.ReadAll(ca)
	if string(got) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want abc and a truncation", got, err)
	}
	d, err := ca.Finish(ctx)
	if !errors.Is(err, ErrIncomplete) || d.PeerFinished || d.Received != 3 {
		t.Fatalf("finish: %+v, %v", d, err)
	}
}

// TestUnreadDataBlocksFinish: Finish never throws data away; a side that
// does not read what its peer sent does not acknowledge it, and both ends
// report an incomplete delivery when their deadlines pass.
func TestUnreadDataBlocksFinish(t *testing.T) {
	a, b := tcpPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := New(b).Finish(ctx) // never reads
		done <- err
	}()
	ca := New(a)
	ca.Write(randBytes(t, 100000))
	d, err := ca.Finish(ctx)
	if !errors.Is(err, ErrIncomplete) || d.PeerAcked {
		t.Fatalf("sender: %+v, %v", d, err)
	}
	if err := <-done; !errors.Is(err, ErrIncomplete) {
		t.Fatalf("receiver: %v", err)
	}
}

func TestFinishHonoursContext(t *testing.T) {
	a, _ := tcpPair(t) // the peer never answers
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := New(a).Finish(ctx)
	if !errors.Is(err, ErrIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestProtocolViolations(t *testing.T) {
	for name, stream := range map[string][]byte{
		"oversized DATA":  {0, 0x01, 0x00, 0x01},
		"empty DATA":      {0, 0, 0, 0},
		"unknown type":    {7, 0, 0, 8},
		"short FIN":       {1, 0, 0, 4, 0, 0, 0, 0},
		"FIN count wrong": append([]byte{0, 0, 0, 1, 'x', 1, 0, 0, 8}, 0, 0, 0, 0, 0, 0, 0, 2),
		"early ACK":       {2, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := tcpPair(t)
			go func() { b.Write(stream) }()
			_, err := io.ReadAll(New(a))
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

// memConn is a peer stream held in memory, for the fuzzer.
type memConn struct {
	net.Conn
	r io.Reader
}

func (m *memConn) Read(p []byte) (int, error)  { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error) { return len(p), nil }
func (m *memConn) CloseWrite() error           { return nil }
func (m *memConn) Close() error                { return nil }
func (m *memConn) SetReadDeadline(time.Time) error {
	return nil
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 1, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Add([]byte{2, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := New(&memConn{r: bytes.NewReader(stream)})
		got, err := io.ReadAll(c)
		if len(got) > len(stream) {
			t.Fatalf("read %d bytes from a %d-byte stream", len(got), len(stream))
		}
		if err == nil && c.Delivery().PeerSent != uint64(len(got)) {
			t.Fatalf("clean EOF but FIN said %d, read %d", c.Delivery().PeerSent, len(got))
		}
	})
}
