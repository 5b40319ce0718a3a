package confirm

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/punch/internal/seclink"
)

// securePair is a seclink TLS pair over loopback TCP.
func securePair(t testing.TB) (a, b *seclink.Conn, rawB *net.TCPConn) {
	t.Helper()
	ta, tb := tcpPair(t)
	s, err := seclink.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	auth := seclink.SecretAuth(s, "bench")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var tag seclink.SessionTag
	errc := make(chan error, 1)
	go func() {
		var err error
		b, err = seclink.Handshake(ctx, tb, seclink.RoleControlled, tag, auth)
		errc <- err
	}()
	a, err = seclink.Handshake(ctx, ta, seclink.RoleControlling, tag, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return a, b, tb
}

func TestOverSecureLink(t *testing.T) {
	a, b, _ := securePair(t)
	outA, outB := randBytes(t, 3<<20), randBytes(t, 1<<20)
	sa, sb := both(t, a, b, outA, outB)
	checkComplete(t, "controlling", sa, outA, outB)
	checkComplete(t, "controlled", sb, outB, outA)
}

func TestOverSecureLinkPeerKilled(t *testing.T) {
	a, _, rawB := securePair(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		rawB.SetLinger(0)
		rawB.Close()
	}()
	ca := New(a)
	ca.Write(randBytes(t, 4<<20))
	d, err := ca.Finish(testCtx(t))
	if !errors.Is(err, ErrIncomplete) || d.PeerAcked {
		t.Fatalf("%+v, %v", d, err)
	}
}

// BenchmarkGoodput moves 64 MiB one way over loopback per iteration: plain
// TCP, the confirmed stream over plain TCP (--insecure), and the confirmed
// stream over the seclink TLS link. Compare MB/s.
func BenchmarkGoodput(b *testing.B) {
	const size = 64 << 20
	chunk := make([]byte, 256<<10)
	run := func(b *testing.B, w io.Writer, r io.Reader, finish func() error) {
		b.SetBytes(size)
		done := make(chan error, 1)
		go func() {
			for range b.N {
				if _, err := io.CopyN(io.Discard, r, size); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for range b.N {
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if finish != nil {
			if err := finish(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("tcp", func(b *testing.B) {
		x, y := tcpPair(b)
		run(b, x, y, nil)
	})
	b.Run("confirm-tcp", func(b *testing.B) {
		x, y := tcpPair(b)
		cx, cy := New(x), New(y)
		run(b, cx, cy, func() error { return finishBoth(cx, cy) })
	})
	b.Run("confirm-tls", func(b *testing.B) {
		x, y, _ := securePair(b)
		cx, cy := New(x), New(y)
		run(b, cx, cy, func() error { return finishBoth(cx, cy) })
	})
}

func finishBoth(x, y *Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		if _, err := io.Copy(io.Discard, y); err != nil {
			errc <- err
			return
		}
		_, err := y.Finish(ctx)
		errc <- err
	}()
	if _, err := x.Finish(ctx); err != nil {
		return err
	}
	return <-errc
}
