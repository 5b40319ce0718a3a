package seclink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

const marker = "TCPUNCH-PLAINTEXT-MARKER-7f3a"

// exchange sends msg each way over an established pair and checks it.
func exchange(t *testing.T, a, b *Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, len(marker))
		if _, err := io.ReadFull(b, buf); err != nil {
			errc <- err
			return
		}
		_, err := b.Write(append(buf, " back"...))
		errc <- err
	}()
	if _, err := a.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(marker)+5)
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != marker+" back" {
		t.Fatalf("got %q", buf)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestSecretRight(t *testing.T) {
	a, b := tcpPair(t)
	s := mustSecret(t)
	ra, rb := handshakePair(t, a, b, newTag(t), SecretAuth(s, "laptop"), SecretAuth(s, "laptop"))
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: controlling %v, controlled %v", ra.err, rb.err)
	}
	if ra.conn.Method() != MethodSecret || ra.conn.ConnectionState().NegotiatedProtocol != ALPN {
		t.Fatalf("method %q, alpn %q", ra.conn.Method(), ra.conn.ConnectionState().NegotiatedProtocol)
	}
	cba, _ := ra.conn.ChannelBinding()
	cbb, _ := rb.conn.ChannelBinding()
	if len(cba) != 32 || !bytes.Equal(cba, cbb) {
		t.Fatalf("channel bindings differ: %x / %x", cba, cbb)
	}
	exchange(t, ra.conn, rb.conn)
}

// assertRefused checks that both sides failed with ErrAuthFailed and got
// no link (so no application byte can have been delivered either way).
func assertRefused(t *testing.T, ra, rb result) {
	t.Helper()
	for _, r := range []struct {
		side string
		result
	}{{"controlling", ra}, {"controlled", rb}} {
		if r.conn != nil {
			t.Errorf("%s side got a link", r.side)
		}
		if !errors.Is(r.err, ErrAuthFailed) {
			t.Errorf("%s side: err = %v, want ErrAuthFailed", r.side, r.err)
		}
	}
}

func TestSecretWrong(t *testing.T) {
	s1, s2 := mustSecret(t), mustSecret(t)
	for name, auths := range map[string][2]Auth{
		"other secret": {SecretAuth(s1, "laptop"), SecretAuth(s2, "laptop")},
		"other label":  {SecretAuth(s1, "laptop"), SecretAuth(s1, "desktop")},
		"zero secret":  {SecretAuth(s1, "laptop"), SecretAuth(Secret{}, "laptop")},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := tcpPair(t)
			ra, rb := handshakePair(t, a, b, newTag(t), auths[0], auths[1])
			assertRefused(t, ra, rb)
		})
	}
}

func TestCodeRight(t *testing.T) {
	a, b := tcpPair(t)
	code, err := GenerateCode()
	if err != nil {
		t.Fatal(err)
	}
	// The dialer types it differently; it normalizes to the same code.
	typed := mustCode(t, " "+bytes.NewBufferString(code.String()).String()+"\n")
	ra, rb := handshakePair(t, a, b, newTag(t), CodeAuth(typed), CodeAuth(code))
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: controlling %v, controlled %v", ra.err, rb.err)
	}
	if rb.conn.Method() != MethodCode {
		t.Fatalf("method %q", rb.conn.Method())
	}
	exchange(t, ra.conn, rb.conn)
}

func TestCodeWrong(t *testing.T) {
	for name, codes := range map[string][2]string{
		"one word":  {"7-amber-orbit-lamp", "7-amber-orbit-lake"},
		"nameplate": {"7-amber-orbit-lamp", "8-amber-orbit-lamp"},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := tcpPair(t)
			ra, rb := handshakePair(t, a, b, newTag(t), CodeAuth(mustCode(t, codes[0])), CodeAuth(mustCode(t, codes[1])))
			assertRefused(t, ra, rb)
		})
	}
	t.Run("other session tag", func(t *testing.T) {
		// sid differs: a rendezvous that mixes sessions gets refused.
		a, b := tcpPair(t)
		c := mustCode(t, "7-amber-orbit-lamp")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := Handshake(ctx, b, RoleControlled, newTag(t), CodeAuth(c))
			b.Close()
			done <- err
		}()
		_, err := Handshake(ctx, a, RoleControlling, newTag(t), CodeAuth(c))
		a.Close()
		if !errors.Is(err, ErrAuthFailed) || !errors.Is(<-done, ErrAuthFailed) {
			t.Fatalf("err = %v", err)
		}
	})
}

// relay copies bytes between two conns and records what went each way.
type relay struct {
	mu   sync.Mutex
	seen bytes.Buffer
}

func (r *relay) pipe(dst, src net.Conn, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.seen.Write(buf[:n])
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if cw, ok := dst.(*net.TCPConn); ok {
				cw.CloseWrite()
			}
			return
		}
	}
}

// TestRelaySeesOnlyTLS puts a plain relaying proxy between the peers (as a
// rendezvous that rewrote candidates could): the link works, and the
// marker never crosses the proxy in clear, in either mode.
func TestRelaySeesOnlyTLS(t *testing.T) {
	s := mustSecret(t)
	for name, auth := range map[string]Auth{
		"secret": SecretAuth(s, "x"),
		"code":   CodeAuth(mustCode(t, "42-zebra-yacht-quilt")),
	} {
		t.Run(name, func(t *testing.T) {
			a, pa := tcpPair(t)
			pb, b := tcpPair(t)
			r := &relay{}
			var wg sync.WaitGroup
			wg.Add(2)
			go r.pipe(pb, pa, &wg)
			go r.pipe(pa, pb, &wg)
			ra, rb := handshakePair(t, a, b, newTag(t), auth, auth)
			if ra.err != nil || rb.err != nil {
				t.Fatalf("handshake: %v / %v", ra.err, rb.err)
			}
			exchange(t, ra.conn, rb.conn)
			ra.conn.Close()
			rb.conn.Close()
			wg.Wait()
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.seen.Len() < 2*len(marker) {
				t.Fatalf("relay saw only %d bytes", r.seen.Len())
			}
			if bytes.Contains(r.seen.Bytes(), []byte(marker)) {
				t.Fatal("the marker crossed the relay in clear")
			}
		})
	}
}

// mitm terminates TLS separately with each peer, holding keys of its own
// (it does not know the secret or the code). Both peers must refuse it.
func TestManInTheMiddle(t *testing.T) {
	s := mustSecret(t)
	for name, auths := range map[string][2]Auth{
		"secret": {SecretAuth(s, "x"), SecretAuth(mustSecret(t), "x")},
		"code":   {CodeAuth(mustCode(t, "5-lion-tiger-bear")), CodeAuth(mustCode(t, "5-lion-tiger-bean"))},
	} {
		t.Run(name, func(t *testing.T) {
			real, attacker := auths[0], auths[1]
			a, ma := tcpPair(t) // controlling peer <-> mitm (as controlled)
			mb, b := tcpPair(t) // mitm (as controlling) <-> controlled peer
			tag := newTag(t)
			var wg sync.WaitGroup
			var mitmA, mitmB result
			wg.Add(2)
			go func() { // the MITM's two fake peers
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				mitmA.conn, mitmA.err = Handshake(ctx, ma, RoleControlled, tag, attacker)
				ma.Close()
			}()
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				mitmB.conn, mitmB.err = Handshake(ctx, mb, RoleControlling, tag, attacker)
				mb.Close()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var ra, rb result
			var pw sync.WaitGroup
			pw.Add(1)
			go func() {
				defer pw.Done()
				rb.conn, rb.err = Handshake(ctx, b, RoleControlled, tag, real)
			}()
			ra.conn, ra.err = Handshake(ctx, a, RoleControlling, tag, real)
			pw.Wait()
			wg.Wait()
			assertRefused(t, ra, rb)
		})
	}
}

func TestHalfClose(t *testing.T) {
	a, b := tcpPair(t)
	s := mustSecret(t)
	ra, rb := handshakePair(t, a, b, newTag(t), SecretAuth(s, "x"), SecretAuth(s, "x"))
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: %v / %v", ra.err, rb.err)
	}
	errc := make(chan error, 1)
	go func() {
		got, err := io.ReadAll(rb.conn) // until the client's close_notify
		if err != nil {
			errc <- err
			return
		}
		_, err = rb.conn.Write(append([]byte("reply to "), got...))
		if err == nil {
			err = rb.conn.Close()
		}
		errc <- err
	}()
	if _, err := ra.conn.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := ra.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(ra.conn)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply) != "reply to request" {
		t.Fatalf("reply %q", reply)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeHonoursContext(t *testing.T) {
	a, _ := tcpPair(t) // the peer never answers
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for _, auth := range []Auth{SecretAuth(mustSecret(t), "x"), CodeAuth(mustCode(t, "1-bee-cat-cow"))} {
		_, err := Handshake(ctx, a, RoleControlled, SessionTag{}, auth)
		if err == nil || errors.Is(err, ErrAuthFailed) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	}
	if _, err := Handshake(ctx, a, RoleControlled, SessionTag{}, Auth{}); err == nil {
		t.Fatal("zero Auth accepted")
	}
}
