package seclink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/punch/internal/cpace"
)

// ALPN is the application protocol both peers require.
const ALPN = "tcpunch/1"

// SessionTag is the 16-byte tag the rendezvous gives both peers.
type SessionTag [16]byte

// Role is a peer's role, assigned by the rendezvous.
type Role uint8

const (
	// RoleControlling is the TLS client.
	RoleControlling Role = 1
	// RoleControlled is the TLS server.
	RoleControlled Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleControlling:
		return "controlling"
	case RoleControlled:
		return "controlled"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

func (r Role) other() Role { return 3 - r }

// Option configures Handshake.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	logger *slog.Logger
}

// WithLogger sets the logger for handshake events (default: discard).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// Conn is an authenticated TLS 1.3 link. Read, Write, CloseWrite and Close
// are those of the TLS connection; Read reports a peer that refused our
// certificate after our handshake finished as ErrAuthFailed.
type Conn struct {
	*tls.Conn
	method string
	batch  *batchConn
}

// Write writes application data: its TLS records leave in one write of
// the connection below (batch.go), at most 256 KiB at a time.
func (c *Conn) Write(p []byte) (int, error) {
	c.batch.begin()
	n, err := c.Conn.Write(p)
	if ferr := c.batch.end(); ferr != nil && err == nil {
		// The records are lost below crypto/tls: nothing of p is known
		// to have left.
		return 0, ferr
	}
	return n, err
}

// Method says how the link was authenticated (MethodSecret or MethodCode).
func (c *Conn) Method() string { return c.method }

// Read reads application data.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	return n, classify(err)
}

// ChannelBinding returns 32 bytes exported from the TLS session (RFC 8446
// section 7.5, label "EXPORTER-tcpunch-channel-binding"): equal on both
// ends of one TLS session, different on the two halves of a man in the
// middle.
func (c *Conn) ChannelBinding() ([]byte, error) {
	cs := c.ConnectionState()
	return cs.ExportKeyingMaterial("EXPORTER-tcpunch-channel-binding", nil, 32)
}

// Handshake authenticates conn as role in the session tagged tag, with
// auth, and returns the encrypted link. It gives up when ctx ends. On
// failure conn is left to the caller (it is not closed) and the error wraps
// ErrAuthFailed when the peer holds a different secret or code.
//
// The controlling side may send as soon as Handshake returns (1 TLS round
// trip); the controlled side returns once it has verified the client (1.5).
func Handshake(ctx context.Context, conn net.Conn, role Role, tag SessionTag, auth Auth, opts ...Option) (*Conn, error) {
	cfg := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if role != RoleControlling && role != RoleControlled {
		return nil, fmt.Errorf("seclink: invalid role %d", role)
	}
	if auth.method == "" {
		return nil, errors.New("seclink: no authentication (use SecretAuth or CodeAuth)")
	}
	start := time.Now()

	keys := &keySource{role: role, tag: tag}
	tconn := conn
	if auth.method == MethodSecret {
		keys.set(auth.kAuth)
	} else {
		var err error
		if tconn, err = codePrelude(ctx, conn, role, tag, auth.code, keys); err != nil {
			return nil, err
		}
	}

	tc := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		InsecureSkipVerify:     true, // no CA: VerifyPeerCertificate below is the check
		SessionTicketsDisabled: true, // resumption would skip certificate verification
		// Full 16 KiB records from the first byte: the link carries bulk
		// streams, and a batch (batch.go) leaves as one write anyway, so
		// small opening records would only add per-record cost.
		DynamicRecordSizingDisabled: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := keys.identity()
			if err != nil {
				return err
			}
			return verifyCertificate(id, role.other(), tag, raw)
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.NegotiatedProtocol != ALPN {
				return fmt.Errorf("%w: peer does not speak %s", ErrAuthFailed, ALPN)
			}
			return nil
		},
	}
	batch := &batchConn{Conn: tconn}
	var tlsConn *tls.Conn
	if role == RoleControlling {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return keys.certificate()
		}
		tlsConn = tls.Client(batch, tc)
	} else {
		tc.ClientAuth = tls.RequireAnyClientCert
		tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return keys.certificate()
		}
		tlsConn = tls.Server(batch, tc)
	}
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		err = classify(err)
		cfg.logger.Debug("secure handshake failed", "role", role, "method", auth.method, "err", err)
		return nil, fmt.Errorf("seclink: %s handshake as %v: %w", auth.method, role, err)
	}
	cfg.logger.Debug("secure link up", "role", role, "method", auth.method, "took", time.Since(start))
	return &Conn{Conn: tlsConn, method: auth.method, batch: batch}, nil
}

// keySource hands K_auth to the TLS callbacks; in code mode it becomes
// available only when the peer's CPace share has been read.
type keySource struct {
	role Role
	tag  SessionTag

	mu  sync.Mutex
	id  *identity
	err error
}

func (k *keySource) set(kAuth []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := newIdentity(kAuth)
	k.id = &id
}

func (k *keySource) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.err = err
}

func (k *keySource) identity() (identity, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.id == nil {
		if k.err != nil {
			return identity{}, k.err
		}
		return identity{}, fmt.Errorf("%w: the peer's key share did not arrive before its certificate", ErrAuthFailed)
	}
	return *k.id, nil
}

func (k *keySource) certificate() (*tls.Certificate, error) {
	id, err := k.identity()
	if err != nil {
		return nil, err
	}
	return makeCertificate(id, k.role, k.tag)
}

// codePrelude runs CPace in front of the TLS records. Both sides write
// their 32-byte share at once. The controlled side (TLS server) reads the
// client's share before it reads the ClientHello, so K_auth is ready when
// it makes its certificate. The controlling side does not wait: it returns
// a conn whose first Read consumes the server's share, which arrives ahead
// of the server's first TLS flight, so the ClientHello goes out pipelined
// behind the share.
func codePrelude(ctx context.Context, conn net.Conn, role Role, tag SessionTag, code Code, keys *keySource) (net.Conn, error) {
	party, err := newCPace(code, role, tag)
	if err != nil {
		return nil, fmt.Errorf("seclink: starting CPace: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			conn.SetDeadline(time.Time{})
		}
	}()
	if _, err := conn.Write(party.Share()); err != nil {
		return nil, fmt.Errorf("seclink: sending the code key share: %w", ctxErr(ctx, err))
	}
	finish := func(peer []byte) error {
		isk, err := party.Finish(peer, nil)
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrAuthFailed, err)
			keys.fail(err)
			return err
		}
		keys.set(codeKAuth(isk))
		return nil
	}
	if role == RoleControlled {
		var peer [cpace.ShareSize]byte
		if _, err := io.ReadFull(conn, peer[:]); err != nil {
			return nil, fmt.Errorf("seclink: reading the peer's code key share: %w", ctxErr(ctx, err))
		}
		if err := finish(peer[:]); err != nil {
			return nil, fmt.Errorf("seclink: code handshake as %v: %w", role, err)
		}
		return conn, nil
	}
	return &shareConn{Conn: conn, finish: finish}, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// shareConn consumes the peer's CPace share in front of the stream on the
// first Read.
type shareConn struct {
	net.Conn
	finish func([]byte) error
	done   bool
	err    error
}

func (c *shareConn) Read(p []byte) (int, error) {
	if !c.done {
		c.done = true
		var peer [cpace.ShareSize]byte
		if _, err := io.ReadFull(c.Conn, peer[:]); err != nil {
			c.err = fmt.Errorf("reading the peer's code key share: %w", err)
		} else if err := c.finish(peer[:]); err != nil {
			c.err = err
		}
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying TCP connection (crypto/tls calls
// it after its close_notify).
func (c *shareConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("seclink: connection cannot half-close")
}
