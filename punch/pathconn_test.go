package punch

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// relayLegs joins the two legs of one relay session at server: the
// controlling side's and the controlled side's.
func relayLegs(t *testing.T, server string) (la, lb *rendezvous.RelayConn) {
	t.Helper()
	token := relayTokens(t, server)
	ctx := testCtx(t)
	var ea, eb error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); la, ea = rendezvous.DialRelay(ctx, server, token, rendezvous.RoleControlling) }()
	go func() { defer wg.Done(); lb, eb = rendezvous.DialRelay(ctx, server, token, rendezvous.RoleControlled) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("relay legs: %v, %v", ea, eb)
	}
	return la, lb
}

// pathPair is two pathConns on real relay legs through a loopback
// rendezvous server, and a loopback TCP pair to move to.
func pathPair(t *testing.T) (pa, pb *pathConn, da, db *net.TCPConn) {
	t.Helper()
	server, _ := rendezvousAt(t, "127.0.0.1:0")
	la, lb := relayLegs(t, server)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	da, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	db, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	pa, pb = newPathConn(la, RoleControlling), newPathConn(lb, RoleControlled)
	t.Cleanup(func() { pa.Close(); pb.Close(); da.Close(); db.Close() })
	return pa, pb, da, db
}

// send writes n pseudo-random bytes (seed) in uneven chunks, calling
// midway once after half, then half-closes; it returns their digest.
func send(t *testing.T, c *pathConn, seed uint64, n int, midway func()) [32]byte {
	r := rand.New(rand.NewPCG(seed, seed))
	h := sha256.New()
	buf := make([]byte, 40<<10)
	for sent := 0; sent < n; {
		k := min(n-sent, 1+r.IntN(len(buf)))
		for i := range buf[:k] {
			buf[i] = byte(r.Uint32())
		}
		if _, err := c.Write(buf[:k]); err != nil {
			t.Errorf("write after %d bytes: %v", sent, err)
			return [32]byte{}
		}
		h.Write(buf[:k])
		if sent < n/2 && sent+k >= n/2 && midway != nil {
			midway()
		}
		sent += k
	}
	if err := c.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	return [32]byte(h.Sum(nil))
}

func recvAll(c *pathConn) ([32]byte, int64, error) {
	h := sha256.New()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(h, c)
	return [32]byte(h.Sum(nil)), n, err
}

// TestPathMoveLossless: both directions run while the stream moves from
// the relay to the direct connection (offered to each side in the middle
// of its own writing): each arrives whole and in order, and the rest of
// it travelled on the direct connection.
func TestPathMoveLossless(t *testing.T) {
	pa, pb, da, db := pathPair(t)
	tag := newTag(t)
	const n = 8 << 20
	var sumA, sumB, gotA, gotB [32]byte
	var nA, nB int64
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		sumA = send(t, pa, 1, n, func() {
			if !pa.offer(da, tag, MethodConnect, 0) {
				t.Error("controlling side refused the direct connection")
			}
		})
	}()
	go func() {
		defer wg.Done()
		sumB = send(t, pb, 2, n, func() {
			if !pb.offer(db, tag, MethodConnect, 0) {
				t.Error("controlled side refused the direct connection")
			}
		})
	}()
	go func() { defer wg.Done(); gotB, nB, errB = recvAll(pb) }()
	go func() { defer wg.Done(); gotA, nA, errA = recvAll(pa) }()
	// Info is read while the stream moves (the race detector watches),
	// and says relay until the move is announced, direct after.
	conn := &Conn{nc: pa, info: Info{Path: PathRelay, Method: MethodRelay}}
	stopInfo := make(chan struct{})
	infoDone := make(chan bool)
	go func() {
		sawRelay := false
		for {
			select {
			case <-stopInfo:
				infoDone <- sawRelay
				return
			default:
			}
			if i := conn.Info(); i.Path == PathRelay {
				sawRelay = true
			} else if i.Upgrade.From != PathRelay || i.Method != MethodConnect {
				t.Errorf("Info during the move: %+v", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(stopInfo)
	if !<-infoDone {
		t.Error("Info never said relay before the move")
	}
	if i := conn.Info(); i.Path != PathDirect || i.Local != addrPortOf(da.LocalAddr()) || i.Remote != addrPortOf(da.RemoteAddr()) || i.Upgrade.From != PathRelay {
		t.Errorf("Info after the move: %+v, want direct on %v → %v", i, da.LocalAddr(), da.RemoteAddr())
	}
	if errA != nil || errB != nil || gotB != sumA || gotA != sumB || nA != n || nB != n {
		t.Fatalf("controlling read %d bytes (%v), controlled %d (%v); digests match: %v, %v", nA, errA, nB, errB, gotA == sumB, gotB == sumA)
	}
	if pa.rd != net.Conn(da) || pb.rd != net.Conn(db) || pa.wd != da || pb.wd != db {
		t.Fatal("the stream did not move to the direct connection")
	}
	// Both directions were busy across the move: each side measured its
	// read stall, and the account says relay → direct.
	for _, c := range []*pathConn{pa, pb} {
		up, local, remote, method, ok := c.upgradeInfo()
		if !ok || up.From != PathRelay || !up.ReadStallMeasured || up.At.IsZero() || !local.IsValid() || !remote.IsValid() || method != MethodConnect {
			t.Fatalf("%v: upgrade account %+v (announced %v, %v → %v, %v)", c.role, up, ok, local, remote, method)
		}
		if up.ReadStall <= 0 || up.ReadStall > time.Second {
			t.Errorf("%v: read stall %v, want (0, 1 s] on loopback", c.role, up.ReadStall)
		}
		t.Logf("%v: read stall %v, write stall %v", c.role, up.ReadStall, up.WriteStall)
	}
}

// TestPathControlFramesPassRead: control frames that are no marker (a
// round's CANDIDATES, a malformed one, a type this version does not
// know) leave the stream as it is: Read returns every byte in order, and
// the valid CANDIDATES reaches the upgrade.
func TestPathControlFramesPassRead(t *testing.T) {
	pa, pb, _, _ := pathPair(t)
	got := make(chan roundCandidates, 4)
	pb.mu.Lock()
	pb.onCands = func(rc roundCandidates) { got <- rc }
	pb.mu.Unlock()
	want := []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:40001"), netip.MustParseAddrPort("[2001:db8::7]:40001")}
	good, err := marshalCandidates(3, want)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error { _, err := pa.Write([]byte("one ")); return err },
		func() error { return pa.relay.WriteControl(frameCandidates, good) },
		func() error { _, err := pa.Write([]byte("two ")); return err },
		func() error { return pa.relay.WriteControl(frameCandidates, []byte{0, 0, 0, 1, 9}) }, // 9 candidates promised, none there
		func() error { return pa.relay.WriteControl(0x3f, []byte("from a later version")) },
		func() error { _, err := pa.Write([]byte("three")); return err },
		pa.CloseWrite,
	}
	for i, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	_ = pb.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(pb)
	if err != nil || string(b) != "one two three" {
		t.Fatalf("read %q, %v; want %q", b, err, "one two three")
	}
	select {
	case rc := <-got:
		if rc.round != 3 || len(rc.cands) != 2 || rc.cands[0] != want[0] || rc.cands[1] != want[1] {
			t.Fatalf("candidates %+v, want round 3 %v", rc, want)
		}
	default:
		t.Fatal("the valid CANDIDATES never reached the upgrade")
	}
	if len(got) != 0 {
		t.Fatalf("a malformed CANDIDATES reached the upgrade: %+v", <-got)
	}
}

// TestPathMoveHalfClosed: a direction that already ended on the relay
// needs no move. With the controlled side half-closed first, the
// controlling side's rest still moves and the controlled side's EOF
// still arrives; with the controlling side half-closed first, there is
// no move at all and both directions end on the relay.
func TestPathMoveHalfClosed(t *testing.T) {
	t.Run("controlled-first", func(t *testing.T) {
		pa, pb, da, db := pathPair(t)
		tag := newTag(t)
		if err := pb.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if !pb.offer(db, tag, MethodConnect, 0) {
			t.Fatal("controlled side refused the direct connection")
		}
		var got [32]byte
		var n int64
		var err error
		done := make(chan struct{})
		go func() { defer close(done); got, n, err = recvAll(pb) }()
		sum := send(t, pa, 3, 1<<20, func() {
			if !pa.offer(da, tag, MethodConnect, 0) {
				t.Error("controlling side refused the direct connection")
			}
		})
		<-done
		if err != nil || got != sum || n != 1<<20 {
			t.Fatalf("controlled read %d bytes, %v, digest match %v", n, err, got == sum)
		}
		if b, err := io.ReadAll(pa); err != nil || len(b) != 0 {
			t.Fatalf("controlling side after the peer's EOF: %q, %v", b, err)
		}
	})
	t.Run("controlling-first", func(t *testing.T) {
		pa, pb, da, db := pathPair(t)
		tag := newTag(t)
		if err := pa.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if pa.offer(da, tag, MethodConnect, 0) {
			t.Fatal("a controlling side whose direction ended took the direct connection")
		}
		if !pb.offer(db, tag, MethodConnect, 0) {
			t.Fatal("controlled side refused the direct connection")
		}
		if _, err := pb.Write([]byte("still relayed")); err != nil {
			t.Fatal(err)
		}
		pb.CloseWrite()
		_ = pa.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(pa); err != nil || !bytes.Equal(b, []byte("still relayed")) {
			t.Fatalf("controlling read %q, %v", b, err)
		}
		_ = pb.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(pb); err != nil || len(b) != 0 {
			t.Fatalf("controlled read %q, %v", b, err)
		}
	})
}

// TestPathRelayDeathAfterMove: once moved, the relay legs' death changes
// nothing.
func TestPathRelayDeathAfterMove(t *testing.T) {
	pa, pb, da, db := pathPair(t)
	tag := newTag(t)
	pb.offer(db, tag, MethodConnect, 0)
	if _, err := pa.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	if !pa.offer(da, tag, MethodConnect, 0) {
		t.Fatal("controlling side refused the direct connection")
	}
	if _, err := pa.Write([]byte("x")); err != nil { // on the direct connection
		t.Fatal(err)
	}
	expect := func(c *pathConn, want string) {
		t.Helper()
		buf := make([]byte, len(want))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := io.ReadFull(c, buf); err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	expect(pb, "before x") // past MOVE: the controlled side reads the direct connection
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		pb.wmu.Lock()
		moved := pb.wd != nil
		pb.wmu.Unlock()
		if moved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the controlled side never sent MOVED")
		}
	}
	if _, err := pb.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	expect(pa, "pong") // past MOVED
	pa.relay.Close()
	pb.relay.Close()
	if _, err := pa.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	expect(pb, "after")
	if _, err := pb.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	expect(pa, "back")
}
