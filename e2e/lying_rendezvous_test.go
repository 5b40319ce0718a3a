//go:build linux

package e2e_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gtank/ristretto255"
	"github.com/pion/stun/v3"
)

// The rendezvous attribute that carries candidates (docs/PROTOCOL.md).
const attrXORCandidate stun.AttrType = 0x7C02

// lyingRendezvous sits in front of a real server and rewrites every
// candidate it sends to either peer into to: what a compromised rendezvous
// would do to put itself in the middle.
func lyingRendezvous(t *testing.T, upstream string, to netip.AddrPort) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go func() { io.Copy(s, c); s.Close() }()
			go func() { rewriteStream(c, s, to); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// rewriteStream copies STUN messages from src to dst, rewriting candidates.
func rewriteStream(dst io.Writer, src io.Reader, to netip.AddrPort) {
	hdr := make([]byte, 20)
	for {
		if _, err := io.ReadFull(src, hdr); err != nil {
			return
		}
		raw := make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:4])))
		copy(raw, hdr)
		if _, err := io.ReadFull(src, raw[20:]); err != nil {
			return
		}
		if _, err := dst.Write(rewriteCandidates(raw, to)); err != nil {
			return
		}
	}
}

func rewriteCandidates(raw []byte, to netip.AddrPort) []byte {
	m := &stun.Message{Raw: append([]byte{}, raw...)}
	if err := m.Decode(); err != nil {
		return raw
	}
	if _, err := m.Get(attrXORCandidate); err != nil {
		return raw
	}
	out := &stun.Message{Type: m.Type, TransactionID: m.TransactionID}
	out.WriteHeader()
	done, fingerprint := false, false
	for _, a := range m.Attributes {
		switch a.Type {
		case attrXORCandidate:
			if !done {
				addr := stun.XORMappedAddress{IP: to.Addr().AsSlice(), Port: int(to.Port())}
				if err := addr.AddToAs(out, attrXORCandidate); err != nil {
					return raw
				}
				done = true
			}
		case stun.AttrFingerprint:
			fingerprint = true
		default:
			out.Add(a.Type, a.Value)
		}
	}
	if fingerprint {
		stun.Fingerprint.AddTo(out)
	}
	return out.Raw
}

// mitm accepts the two peers' connections to the address the lying
// rendezvous handed out, passes their 32-byte verification hellos across
// (it knows the session tag, as the rendezvous does), and then either
// relays everything (active false) or runs its own TLS 1.3 with each peer
// (active true), as a man in the middle without the secret must. seen
// collects every byte that crossed it.
type mitm struct {
	ln   net.Listener
	mu   sync.Mutex
	seen bytes.Buffer
}

func startMITM(t *testing.T, active, code bool) *mitm {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := ln.Accept()
			if err != nil {
				a.Close()
				return
			}
			t.Cleanup(func() { a.Close(); b.Close() })
			go m.pair(t, a, b, active, code)
		}
	}()
	return m
}

func (m *mitm) record(p []byte) {
	m.mu.Lock()
	m.seen.Write(p)
	m.mu.Unlock()
}

func (m *mitm) saw(marker string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Contains(m.seen.Bytes(), []byte(marker))
}

func (m *mitm) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen.Len()
}

type recorder struct {
	m *mitm
	w io.Writer
}

func (r recorder) Write(p []byte) (int, error) { r.m.record(p); return r.w.Write(p) }

func (m *mitm) pair(t *testing.T, a, b net.Conn, active, code bool) {
	ha, hb := make([]byte, 32), make([]byte, 32)
	if _, err := io.ReadFull(a, ha); err != nil {
		return
	}
	if _, err := io.ReadFull(b, hb); err != nil {
		return
	}
	a.Write(hb)
	b.Write(ha)
	if !active {
		go func() { io.Copy(recorder{m, b}, a); b.Close() }()
		io.Copy(recorder{m, a}, b)
		a.Close()
		return
	}
	// Byte 7 of a hello is the sender's role: 1 controlling (the dialer,
	// a TLS client), 2 controlled (the listener, a TLS server).
	dialer, listener := a, b
	if ha[7] == 2 {
		dialer, listener = b, a
	}
	if code {
		// In front of TLS each side sends a 32-byte CPace share: the man in
		// the middle answers each with a valid ristretto255 element of its
		// own (as a guess at the password would give) and reads theirs.
		for _, c := range []net.Conn{dialer, listener} {
			c.Write(randomElement(t))
			io.ReadFull(recordingConn{c, m}, make([]byte, 32))
		}
	}
	cert := selfSigned(t)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"tcpunch/1"},
		Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, ClientAuth: tls.RequireAnyClientCert}
	go func() {
		s := tls.Server(recordingConn{dialer, m}, cfg)
		s.Handshake()
		io.Copy(io.Discard, s)
	}()
	c := tls.Client(recordingConn{listener, m}, cfg)
	c.Handshake()
	io.Copy(io.Discard, c)
}

type recordingConn struct {
	net.Conn
	m *mitm
}

func (c recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.record(p[:n])
	return n, err
}

func randomElement(t *testing.T) []byte {
	var wide [64]byte
	if _, err := rand.Read(wide[:]); err != nil {
		t.Fatal(err)
	}
	return ristretto255.NewElement().FromUniformBytes(wide[:]).Encode(nil)
}

func selfSigned(t *testing.T) tls.Certificate {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// TestLyingRendezvous: a rendezvous that rewrites both peers' candidates
// to a proxy of its own. Relaying, the proxy sees only TLS records: the
// marker the peers exchange never crosses it in clear. Terminating TLS
// itself (it has no secret or code), it is refused by both sides, which
// deliver nothing: the dialer exits 6, the listener says so and keeps
// serving.
func TestLyingRendezvous(t *testing.T) {
	t.Parallel()
	const marker = "MARKER-7f3a-never-in-clear"
	for _, mode := range []string{"secret", "code"} {
		t.Run("relay/"+mode, func(t *testing.T) {
			rv, _ := serve(t, nil, "127.0.0.1:0")
			m := startMITM(t, false, mode == "code")
			lie := lyingRendezvous(t, rv, netip.MustParseAddrPort(m.ln.Addr().String()))
			payload := strings.Repeat(marker+"\n", 1000)
			var lOut, dOut syncBuffer
			l, d := runPair(t, mode, lie, strings.NewReader(payload), &lOut, strings.NewReader(payload), &dOut)
			if c := d.wait(60 * time.Second); c != 0 {
				t.Fatalf("dial through the relaying proxy: exit %d:\n%s", c, d.stderr.String())
			}
			if c := l.wait(60 * time.Second); c != 0 {
				t.Fatalf("listen: exit %d:\n%s", c, l.stderr.String())
			}
			if lOut.String() != payload || dOut.String() != payload {
				t.Fatalf("payload changed: listener got %d bytes, dialer %d", lOut.Len(), dOut.Len())
			}
			if m.total() < 2*len(payload) {
				t.Fatalf("the proxy relayed only %d bytes: the peers did not go through it", m.total())
			}
			if m.saw(marker) {
				t.Fatal("the marker crossed the proxy in clear")
			}
		})
		t.Run("terminate/"+mode, func(t *testing.T) {
			rv, _ := serve(t, nil, "127.0.0.1:0")
			m := startMITM(t, true, mode == "code")
			lie := lyingRendezvous(t, rv, netip.MustParseAddrPort(m.ln.Addr().String()))
			var lOut, dOut syncBuffer
			l, d := runPair(t, mode, lie, strings.NewReader(marker), &lOut, strings.NewReader(marker), &dOut)
			if c := d.wait(60 * time.Second); c != 6 {
				t.Fatalf("dial through a TLS-terminating proxy: exit %d, want 6:\n%s", c, d.stderr.String())
			}
			l.waitStderr(`failed authentication`, 30*time.Second)
			if lOut.Len() != 0 || dOut.Len() != 0 {
				t.Errorf("delivered through the man in the middle: listener %q, dialer %q", lOut.String(), dOut.String())
			}
			if m.saw(marker) {
				t.Error("the marker reached the man in the middle")
			}
			select {
			case <-l.done:
				if mode == "secret" {
					t.Errorf("listener stopped after a refused peer:\n%s", l.stderr.String())
				}
			default: // still serving
			}
		})
	}
}

// runPair starts a listener and a dialer in mode (secret or code) against
// the rendezvous at rv.
func runPair(t *testing.T, mode, rv string, lIn io.Reader, lOut io.Writer, dIn io.Reader, dOut io.Writer) (l, d *proc) {
	t.Helper()
	if mode == "code" {
		l = start(t, noSecret, lIn, lOut, "listen", "-r", rv)
		return l, start(t, noSecret, dIn, dOut, "dial", "-r", rv, codeOf(t, l))
	}
	l = start(t, nil, lIn, lOut, "listen", "-r", rv, "mitm")
	l.waitReady(30 * time.Second)
	return l, start(t, nil, dIn, dOut, "dial", "-r", rv, "mitm")
}
