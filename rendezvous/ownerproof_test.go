package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func ownerKey(t testing.TB) (ed25519.PrivateKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, ProtectedName(pub)
}

func TestProtectedNameSyntax(t *testing.T) {
	priv, name := ownerKey(t)
	pub := priv.Public().(ed25519.PublicKey)
	h := sha256.Sum256(pub)
	want := "pk-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:]))
	if name != want || len(name) != 55 {
		t.Fatalf("ProtectedName = %q, want %q", name, want)
	}
	if !IsProtectedName(name) {
		t.Error("IsProtectedName(ProtectedName(pub)) is false")
	}
	if err := defaultNameRule(DefaultMaxNameLength)(name); err != nil {
		t.Errorf("the default name rule refuses a protected name: %v", err)
	}
	suffix := name[3:]
	last := suffix[51]
	// The last character carries 1 bit of the hash and 4 zero bits: a
	// character with any of those 4 bits set spells the same hash twice.
	other := byte('a')
	if last == 'a' {
		other = 'q' // 'q' is 16: the hash bit set, the zero bits still zero
	}
	for _, bad := range []string{
		"pk-" + strings.ToUpper(suffix),
		"pk-" + suffix[:51],
		"pk-" + suffix + "a",
		"pk-" + suffix[:51] + "b", // a non-zero padding bit
		"pk-" + suffix[:50] + "1" + suffix[51:],
		"pk-" + suffix[:50] + "8" + suffix[51:],
		"PK-" + suffix,
		"pk_" + suffix,
	} {
		if IsProtectedName(bad) {
			t.Errorf("IsProtectedName(%q) = true", bad)
		}
	}
	if !IsProtectedName("pk-" + suffix[:51] + string(other)) {
		t.Errorf("a canonical spelling with last character %q refused", other)
	}
	if ProtectedName(pub[:31]) != "" {
		t.Error("ProtectedName accepted a 31-byte key")
	}
}

// The signed bytes are exactly those docs/PROTOCOL.md lists.
func TestOwnerProofLayout(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xEE}, 16)
	got := proofMessage(methodConnect, nonce, "pk-x")
	want := append([]byte("tcpunch owner-proof v1\x00\x0c\x02"), nonce...)
	want = append(want, "pk-x"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("proof message\n got %x\nwant %x", got, want)
	}
	priv, name := ownerKey(t)
	proof := signOwnerProof(priv, methodRegister, nonce, name)
	if len(proof) != 96 || !bytes.Equal(proof[:32], priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("proof is %d bytes, starting %x", len(proof), proof[:32])
	}
	if !verifyOwnerProof(proof, methodRegister, nonce, name) {
		t.Fatal("a good proof does not verify")
	}
	other, otherName := ownerKey(t)
	for what, ok := range map[string]bool{
		"other method":       verifyOwnerProof(proof, methodConnect, nonce, name),
		"other nonce":        verifyOwnerProof(proof, methodRegister, bytes.Repeat([]byte{0xEF}, 16), name),
		"other name":         verifyOwnerProof(proof, methodRegister, nonce, otherName),
		"key not the name's": verifyOwnerProof(signOwnerProof(other, methodRegister, nonce, name), methodRegister, nonce, name),
		"short":              verifyOwnerProof(proof[:95], methodRegister, nonce, name),
	} {
		if ok {
			t.Errorf("%s: verifies", what)
		}
	}
}

func TestOwnerAttrsDecode(t *testing.T) {
	raw := func(attrs ...stun.RawAttribute) []byte {
		m := stun.New()
		m.Type = stun.NewType(methodRegister, stun.ClassRequest)
		m.TransactionID = newTxID()
		m.WriteHeader()
		for _, a := range attrs {
			m.Add(a.Type, a.Value)
		}
		return m.Raw
	}
	n := func(k int) []byte { return bytes.Repeat([]byte{1}, k) }
	for name, b := range map[string][]byte{
		"nonce 15":       raw(stun.RawAttribute{Type: attrNonce, Value: n(15)}),
		"nonce 33":       raw(stun.RawAttribute{Type: attrNonce, Value: n(33)}),
		"two nonces":     raw(stun.RawAttribute{Type: attrNonce, Value: n(16)}, stun.RawAttribute{Type: attrNonce, Value: n(16)}),
		"proof 95":       raw(stun.RawAttribute{Type: attrOwnerProof, Value: n(95)}),
		"proof 97":       raw(stun.RawAttribute{Type: attrOwnerProof, Value: n(97)}),
		"two proofs":     raw(stun.RawAttribute{Type: attrOwnerProof, Value: n(96)}, stun.RawAttribute{Type: attrOwnerProof, Value: n(96)}),
		"empty proof":    raw(stun.RawAttribute{Type: attrOwnerProof}),
		"resume 15":      raw(stun.RawAttribute{Type: attrResume, Value: n(15)}),
		"two resumes":    raw(stun.RawAttribute{Type: attrResume, Value: n(16)}, stun.RawAttribute{Type: attrResume, Value: n(16)}),
		"resume 0 bytes": raw(stun.RawAttribute{Type: attrResume}),
	} {
		if _, _, err := decodeMessage(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
	msg, unknown, err := decodeMessage(raw(stun.RawAttribute{Type: attrNonce, Value: n(32)}, stun.RawAttribute{Type: attrOwnerProof, Value: n(96)}, stun.RawAttribute{Type: attrResume, Value: n(16)}))
	if err != nil || len(unknown) != 0 || len(msg.Nonce) != 32 || len(msg.OwnerProof) != 96 || !msg.HasResume {
		t.Errorf("good attributes: %+v %v %v", msg, unknown, err)
	}
	for _, a := range []stun.AttrType{attrNonce, attrOwnerProof, attrResume} {
		if !a.Required() || !understood(a) {
			t.Errorf("%#x must be comprehension-required and understood", uint16(a))
		}
	}
}

// rawRequest sends req on r and returns the answer.
func (r *rawConn) request(req *message) *message {
	r.t.Helper()
	r.send(req)
	msg, _, err := r.recv()
	if err != nil {
		r.t.Fatalf("%v: no answer: %v", req.Type, err)
	}
	return msg
}

func rawReq(method stun.Method, name string) *message {
	return &message{Type: stun.NewType(method, stun.ClassRequest), TxID: newTxID(), Name: name}
}

// challenge sends an unproven request and checks the 401.
func challenge(t *testing.T, r *rawConn, method stun.Method, name string) []byte {
	t.Helper()
	resp := r.request(rawReq(method, name))
	if resp.Type != stun.NewType(method, stun.ClassErrorResponse) || resp.Code != CodeUnauthorized || len(resp.Nonce) != nonceSize {
		t.Fatalf("unproven %v: %+v, want 401 with a %d-byte NONCE", method, resp, nonceSize)
	}
	return resp.Nonce
}

func proven(priv ed25519.PrivateKey, method stun.Method, nonce []byte, name string) *message {
	req := rawReq(method, name)
	req.OwnerProof = signOwnerProof(priv, method, nonce, name)
	return req
}

// A raw client without the owner key gets nowhere with a protected name, and
// the challenges it may ask for are bounded.
func TestProtectedNameNeedsTheKey(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	priv, name := ownerKey(t)
	reg, err := Register(ctx, addr, anyLocal, name, nil, WithOwnerKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	mallory, _ := ownerKey(t) // a key of its own, not the name's

	// Register: unproven → 401; a proof by the wrong key → 403.
	r := dialRaw(t, addr)
	nonce := challenge(t, r, methodRegister, name)
	if resp := r.request(proven(mallory, methodRegister, nonce, name)); resp.Code != CodeForbidden {
		t.Errorf("Register with a wrong proof: %+v, want 403", resp)
	}
	// The nonce is spent: even the owner's own proof over it is now only
	// answered with a fresh challenge.
	resp := r.request(proven(priv, methodRegister, nonce, name))
	if resp.Code != CodeUnauthorized || len(resp.Nonce) != nonceSize || bytes.Equal(resp.Nonce, nonce) {
		t.Errorf("a proof over a spent nonce: %+v, want 401 with a new NONCE", resp)
	}
	// The bound: the third challenge is the last.
	challenge(t, r, methodRegister, name)
	r.send(rawReq(methodRegister, name))
	if msg, _, err := r.recv(); err != nil || msg.Type != stun.NewType(methodGoodbye, stun.ClassIndication) || msg.Code != CodeUnauthorized {
		t.Errorf("fourth unproven request: %+v %v, want Goodbye 401", msg, err)
	}
	r.expectClosed()

	// Connect: unproven → 401; a wrong proof → 404, the unknown-name answer.
	r = dialRaw(t, addr)
	nonce = challenge(t, r, methodConnect, name)
	if resp := r.request(proven(mallory, methodConnect, nonce, name)); resp.Code != CodeUnknownName {
		t.Errorf("Connect with a wrong proof: %+v, want 404", resp)
	}
	// A proof with no nonce outstanding on this connection is a challenge.
	r = dialRaw(t, addr)
	if resp := r.request(proven(priv, methodConnect, nonce, name)); resp.Code != CodeUnauthorized {
		t.Errorf("a proof over another connection's nonce: %+v, want 401", resp)
	}
	// A pk- name that is no key's hash is a bad name.
	if resp := r.request(rawReq(methodRegister, "pk-"+strings.Repeat("A", 52))); resp.Code != CodeBadRequest {
		t.Errorf("malformed pk- name: %+v, want 400", resp)
	}

	// The public client without the key: ErrUnauthorized, not retried.
	if _, err := Register(ctx, addr, anyLocal, name, nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Register without the key: %v, want ErrUnauthorized", err)
	}
	if _, _, err := Connect(ctx, addr, anyLocal, name, nil); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Connect without the key: %v, want ErrUnauthorized", err)
	}
	// A key that does not own the name is refused before anything is sent.
	if _, _, err := Connect(ctx, addr, anyLocal, name, nil, WithOwnerKey(mallory)); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("Connect with another key: %v, want ErrInvalidOption", err)
	}
	if _, err := Register(ctx, addr, anyLocal, "open", nil, WithOwnerKey(priv[:10])); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("a 10-byte key: %v, want ErrInvalidOption", err)
	}
	// The owner's listener was never displaced. The dialer stays until the
	// listener has its peer info: a dialer that leaves first is cancelled,
	// and the server sends the listener nothing for it.
	if _, c, err := Connect(ctx, addr, anyLocal, name, nil, WithOwnerKey(priv)); err != nil {
		t.Errorf("the owner's Connect: %v", err)
	} else {
		defer c.Close()
	}
	if _, err := reg.Next(ctx); err != nil {
		t.Errorf("the owner's listener: %v", err)
	}
}

// The public client proves on the connection it was challenged on: one
// TCP connection per Register and per Connect.
func TestOwnerKeyRegisterConnect(t *testing.T) {
	ctx := testCtx(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	serveOn(t, ln)
	addr := ln.Addr().String()
	priv, name := ownerKey(t)
	reg, err := Register(ctx, addr, reusedPort(t), name, nil, WithOwnerKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pi, c, err := Connect(ctx, addr, reusedPort(t), name, nil, WithOwnerKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != pi.Tag || got.Name != name {
		t.Errorf("listener got %x %q, dialer %x", got.Tag, got.Name, pi.Tag)
	}
	if n := ln.n.Load(); n != 2 {
		t.Errorf("%d connections for one Register and one Connect, want 2", n)
	}
}

// A Register captured on the wire, proof and all, proves nothing later:
// not on a new connection, not against a new challenge.
func TestCapturedRegisterReplayFails(t *testing.T) {
	_, addr := startServer(t)
	priv, name := ownerKey(t)
	r := dialRaw(t, addr)
	nonce := challenge(t, r, methodRegister, name)
	captured := encodeForTest(t, proven(priv, methodRegister, nonce, name))
	if _, err := r.nc.Write(captured); err != nil {
		t.Fatal(err)
	}
	if msg, _, err := r.recv(); err != nil || msg.Type.Class != stun.ClassSuccessResponse || !msg.HasResume {
		t.Fatalf("the owner's proven Register: %+v %v", msg, err)
	}
	r.nc.Close() // the name frees

	replay := func(r *rawConn) *message {
		t.Helper()
		if _, err := r.nc.Write(captured); err != nil {
			t.Fatal(err)
		}
		msg, _, err := r.recv()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// On a new connection: no nonce outstanding there, so a challenge
	// (checked before the name is looked at: held or free, the same).
	r2 := dialRaw(t, addr)
	if msg := replay(r2); msg.Code != CodeUnauthorized || len(msg.Nonce) != nonceSize {
		t.Fatalf("replay on a new connection: %+v, want 401 with a NONCE", msg)
	}
	// Against that fresh challenge: the old signature is refused.
	if msg := replay(r2); msg.Code != CodeForbidden {
		t.Errorf("replay against a new challenge: %+v, want 403", msg)
	}
	// Nor does it work on the connection it was first sent on.
	if msg := replay(dialRaw(t, addr)); msg.Type.Class == stun.ClassSuccessResponse {
		t.Errorf("replay registered: %+v", msg)
	}
}

// attrShape lists a raw message's attribute types and lengths: what an
// observer can compare beyond the code.
func attrShape(t *testing.T, raw []byte) string {
	t.Helper()
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v:", m.Type)
	for _, a := range m.Attributes {
		fmt.Fprintf(&b, " %#x/%d", uint16(a.Type), len(a.Value))
	}
	return b.String()
}

// rawExchange sends req and returns the answer's raw bytes and message.
func rawExchange(t *testing.T, r *rawConn, req *message) ([]byte, *message) {
	t.Helper()
	r.send(req)
	_ = r.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		raw, err := readFrame(r.nc, nil, maxWireMessageSize, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, _, err := decodeMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Type.Method != methodPing {
			return raw, msg
		}
	}
}

// No oracle: a stranger's Connect gets the same answers, step for step,
// whether or not a listener holds the protected name.
func TestUnprovenConnectNoOracle(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	priv, held := ownerKey(t)
	_, free := ownerKey(t)
	reg, err := Register(ctx, addr, anyLocal, held, nil, WithOwnerKey(priv))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	mallory, _ := ownerKey(t)

	type step struct{ shape, code, reason string }
	probe := func(name string) []step {
		r := dialRaw(t, addr)
		var steps []step
		record := func(raw []byte, msg *message) {
			steps = append(steps, step{attrShape(t, raw), fmt.Sprint(msg.Code), strings.ReplaceAll(msg.Reason, name, "NAME")})
		}
		raw, msg := rawExchange(t, r, rawReq(methodConnect, name))
		record(raw, msg)
		raw, msg = rawExchange(t, r, proven(mallory, methodConnect, msg.Nonce, name))
		record(raw, msg)
		raw, msg = rawExchange(t, r, rawReq(methodConnect, name)) // what the connection does next
		record(raw, msg)
		return steps
	}
	a, b := probe(held), probe(free)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("answers differ:\nheld: %q\nfree: %q", a, b)
	}
	if a[0].code != "401" || a[1].code != "404" || a[2].code != "400" {
		t.Errorf("codes %v, want 401, 404, 400", a)
	}
	// And the same 404 as a dialer that proves a name nobody holds.
	freeKey, freeName := ownerKey(t)
	r := dialRaw(t, addr)
	_, msg := rawExchange(t, r, rawReq(methodConnect, freeName))
	raw, msg := rawExchange(t, r, proven(freeKey, methodConnect, msg.Nonce, freeName))
	if got := (step{attrShape(t, raw), fmt.Sprint(msg.Code), strings.ReplaceAll(msg.Reason, freeName, "NAME")}); got != a[1] {
		t.Errorf("proven Connect to a free name: %q, refused proof: %q", got, a[1])
	}
}

// A listener that reconnects before the server noticed its old connection
// die presents its resume token and gets the name at once; the stale
// connection is told and closed. Without the token, 409.
func TestResumeTakesOverStaleConnection(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t)
	stale := dialRaw(t, addr)
	ok := stale.request(rawReq(methodRegister, "phoenix"))
	if ok.Type.Class != stun.ClassSuccessResponse || !ok.HasResume {
		t.Fatalf("register: %+v", ok)
	}
	fresh := dialRaw(t, addr)
	if resp := fresh.request(rawReq(methodRegister, "phoenix")); resp.Code != CodeNameTaken {
		t.Errorf("without a token: %+v, want 409", resp)
	}
	wrong := rawReq(methodRegister, "phoenix")
	wrong.Resume, wrong.HasResume = [resumeSize]byte{1}, true
	if resp := fresh.request(wrong); resp.Code != CodeNameTaken {
		t.Errorf("with a wrong token: %+v, want 409", resp)
	}
	right := rawReq(methodRegister, "phoenix")
	right.Resume, right.HasResume = ok.Resume, true
	resp := fresh.request(right)
	if resp.Type.Class != stun.ClassSuccessResponse || !resp.HasResume || resp.Resume == ok.Resume {
		t.Fatalf("with the holder's token: %+v, want success with a new token", resp)
	}
	if msg, _, err := stale.recv(); err != nil || msg.Type.Method != methodGoodbye || msg.Code != CodeNameTaken {
		t.Errorf("stale connection: %+v %v, want Goodbye 409", msg, err)
	}
	stale.expectClosed()
	// The token was single use: the old one no longer displaces anybody.
	again := dialRaw(t, addr)
	if resp := again.request(right); resp.Code != CodeNameTaken {
		t.Errorf("the spent token: %+v, want 409", resp)
	}
	// Dialers reach the new connection.
	if _, c, err := Connect(ctx, addr, anyLocal, "phoenix", nil); err != nil {
		t.Fatal(err)
	} else {
		defer c.Close()
	}
	if msg, _, err := fresh.recv(); err != nil || msg.Type.Method != methodPeerInfo {
		t.Errorf("new connection: %+v %v, want PeerInfo", msg, err)
	}
}

// gatedListener holds back the connections from one client port until
// open is called: it lets a test decide who reaches a restarted server
// first.
type gatedListener struct {
	net.Listener
	port      uint16
	gate      chan struct{}
	once      sync.Once
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newGatedListener(t *testing.T, addr string, port uint16) *gatedListener {
	t.Helper()
	var inner net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if inner, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
	}
	g := &gatedListener{Listener: inner, port: port, gate: make(chan struct{}), conns: make(chan net.Conn), done: make(chan struct{})}
	g.wg.Add(1)
	go g.pump()
	t.Cleanup(func() { g.Close(); g.wg.Wait() })
	return g
}

func (g *gatedListener) Close() error {
	g.closeOnce.Do(func() { close(g.done) })
	return g.Listener.Close()
}

func (g *gatedListener) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gatedListener) pump() {
	defer g.wg.Done()
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if addrPortOf(c.RemoteAddr()).Port() == g.port {
				select {
				case <-g.gate:
				case <-g.done:
					c.Close()
					return
				}
			}
			select {
			case g.conns <- c:
			case <-g.done:
				c.Close()
			}
		}()
	}
}

func (g *gatedListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.conns:
		return c, nil
	case <-g.done:
		return nil, net.ErrClosed
	}
}

// restartWithSquatter registers name (with opts) at a server, restarts the
// server on the same address, and lets squat run against the new server
// before the listener can reconnect. It returns the registration and the
// new server's address.
func restartWithSquatter(t *testing.T, name string, opts []ClientOption, squat func(addr string)) (*Registration, *gatedListener) {
	t.Helper()
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv1 := NewServer(WithLogger(testLogger(t)))
	served := make(chan error, 1)
	go func() { served <- srv1.Serve(ln) }()
	local := reusedPort(t)
	reg, err := Register(ctx, addr, local, name, nil, append([]ClientOption{WithBackoff(20*time.Millisecond, 100*time.Millisecond), WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if err := srv1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	g := newGatedListener(t, addr, local.Port())
	serveOn(t, g)
	squat(addr)
	g.open()
	return reg, g
}

// The race with an open name: after a restart a squatter holds the
// name before the listener is back. The resume token died with the old
// server, so the squatter keeps the name, and the listener must say so
// after a bounded retry instead of retrying its 409 forever.
func TestRestartSquatterOnOpenNameIsSurfaced(t *testing.T) {
	ctx := testCtx(t)
	const keepAlive = 100 * time.Millisecond
	var squatter *Registration
	reg, g := restartWithSquatter(t, "open-name", []ClientOption{WithKeepAlive(keepAlive)}, func(addr string) {
		var err error
		if squatter, err = Register(ctx, addr, anyLocal, "open-name", nil); err != nil {
			t.Fatalf("squatter: %v", err)
		}
	})
	defer squatter.Close()
	opened := time.Now()
	_, err := reg.Next(ctx)
	if !errors.Is(err, ErrNameTaken) {
		t.Fatalf("Next: %v, want ErrNameTaken", err)
	}
	if took := time.Since(opened); took < 3*keepAlive {
		t.Errorf("gave up after %v, before the %v it must allow a dead holder", took, 3*keepAlive)
	}
	t.Logf("surfaced after %v: %v", time.Since(opened), err)
	// The squatter kept the name: dialers reach it, as they would any
	// open name's first holder.
	if _, c, err := Connect(ctx, g.Addr().String(), anyLocal, "open-name", nil); err != nil {
		t.Fatal(err)
	} else {
		defer c.Close() // until the squatter has its peer info (see above)
	}
	if _, err := squatter.Next(ctx); err != nil {
		t.Errorf("squatter: %v", err)
	}
}

// The same race with a protected name: the squatter cannot register it at
// all, and the listener proves again on reconnecting and gets it back.
func TestRestartProtectedNameComesBack(t *testing.T) {
	ctx := testCtx(t)
	priv, name := ownerKey(t)
	reg, g := restartWithSquatter(t, name, []ClientOption{WithOwnerKey(priv)}, func(addr string) {
		if _, err := Register(ctx, addr, anyLocal, name, nil); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("squatter without the key: %v, want ErrUnauthorized", err)
		}
		r := dialRaw(t, addr)
		nonce := challenge(t, r, methodRegister, name)
		mallory, _ := ownerKey(t)
		if resp := r.request(proven(mallory, methodRegister, nonce, name)); resp.Code != CodeForbidden {
			t.Errorf("squatter with another key: %+v, want 403", resp)
		}
	})
	addr := g.Addr().String()
	var pi PeerInfo
	for {
		var c interface{ Close() error }
		var err error
		pi, c, err = Connect(ctx, addr, anyLocal, name, nil, WithOwnerKey(priv))
		if err == nil {
			defer c.Close() // until the listener has its peer info (see above)
			break
		}
		if !errors.Is(err, ErrUnknownName) || ctx.Err() != nil {
			t.Fatalf("connect after restart: %v", err)
		}
		// Slow enough for the unknown-name rate limit (2/s, bursts of 10)
		// for as long as the listener's backoff (at most 100 ms) can take.
		time.Sleep(100 * time.Millisecond)
	}
	got, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tag != pi.Tag {
		t.Errorf("listener tag %x, dialer tag %x: the dialer reached someone else", got.Tag, pi.Tag)
	}
}

// TestSameSourceCannotLockOutOwner: requests from the owner's own address
// that spend its Register bucket (open names, unproven and wrongly proven
// protected names) do not keep the owner, proving its key, from
// registering: proven registrations are not charged to the source.
func TestSameSourceCannotLockOutOwner(t *testing.T) {
	srv, addr := startServer(t, WithRegisterRate(0.001, 1))
	ctx := testCtx(t)
	priv, name := ownerKey(t)
	other, _ := ownerKey(t)
	// The one token goes to an open name; the next open one is refused.
	squat, err := Register(ctx, addr, anyLocal, "squat", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	var se *ServerError
	if _, err := Register(ctx, addr, anyLocal, "squat2", nil); !errors.As(err, &se) || se.Code != CodeTooManyRequests {
		t.Fatalf("second open Register: %v, want 429", err)
	}
	// A wrong key for the protected name is refused, not rate limited.
	if _, err := Register(ctx, addr, anyLocal, name, nil, WithOwnerKey(other)); err == nil {
		t.Fatal("a wrong key registered the protected name")
	}
	reg, err := Register(ctx, addr, anyLocal, name, nil, WithOwnerKey(priv))
	if err != nil {
		t.Fatalf("the owner, with its bucket spent: %v", err)
	}
	defer reg.Close()
	if srv.Stats().RegisterRateLimited != 1 {
		t.Errorf("rate-limited registrations: %+v, want 1", srv.Stats())
	}
}
