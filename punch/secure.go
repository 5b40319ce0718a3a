package punch

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/tcpunch/tcpunch/punch/internal/confirm"
	"github.com/tcpunch/tcpunch/punch/internal/seclink"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// How the peers of [Listen] and [Dial] authenticate each other, as
// reported in [Info].Auth.
const (
	AuthSecret   = "secret"   // WithSecret: a long-lived shared secret
	AuthCode     = "code"     // WithCode: a one-time code through a PAKE
	AuthInsecure = "insecure" // WithInsecure: no authentication, no encryption
)

// defaultHandshakeTimeout bounds the secure link's handshake after the
// punch: TLS 1.3 takes one to two round trips.
const defaultHandshakeTimeout = 10 * time.Second

// codeMaxFailures is how many failed authentications retire a code: an
// attacker gets that many online guesses at the words, and nothing to test
// offline.
const codeMaxFailures = 3

var (
	// ErrNoAuth: [Listen] or [Dial] was given none of [WithSecret],
	// [WithCode] and [WithInsecure]. There is no silent plaintext default.
	ErrNoAuth = errors.New("punch: no authentication chosen: give WithSecret (a shared secret), WithCode (a one-time code) or, to send plaintext anyone can read or intercept, WithInsecure")
	// ErrAuthFailed: the peer does not hold the same secret or code (or is
	// not the peer it claims, e.g. a man in the middle). Nothing of the
	// application's data has been read or written.
	ErrAuthFailed = seclink.ErrAuthFailed
	// ErrCodeRetired: a [Listener] with [WithCode] accepts one connection,
	// and gives up after 3 failed authentications; Accept returns an error
	// matching it from then on.
	ErrCodeRetired = errors.New("punch: the one-time code is retired")
	// ErrNotConfirmed: Finish on a bare [Endpoint.Punch] connection, which
	// has no end-of-stream confirmation.
	ErrNotConfirmed = errors.New("punch: connection has no end-of-stream confirmation")
	// ErrIncomplete is matched by every error of [Conn.Finish] when the
	// transfer is not known to be complete; errors.As gives the
	// *[IncompleteError] with the byte counts.
	ErrIncomplete = confirm.ErrIncomplete
)

// Delivery is how a confirmed stream ended, in application bytes.
type Delivery = confirm.Delivery

// IncompleteError says what was and was not delivered, and why.
type IncompleteError = confirm.IncompleteError

// Secret is a long-lived shared secret (256 random bits), the trust of
// [WithSecret]. Its text form ("tps1-…") is what users copy.
type Secret = seclink.Secret

// GenerateSecret returns a new random secret.
func GenerateSecret() (Secret, error) { return seclink.GenerateSecret() }

// ParseSecret reads a secret's text form (white space around it is fine).
func ParseSecret(text string) (Secret, error) { return seclink.ParseSecret(text) }

// Code is a one-time code such as "7-amber-orbit-lamp", the trust of
// [WithCode]: the rendezvous server sees only its nameplate ("c-7"); the
// words are the password of a PAKE (CPace) between the peers.
type Code = seclink.Code

// GenerateCode returns a new random code.
func GenerateCode() (Code, error) { return seclink.GenerateCode() }

// ParseCode reads a code as the user typed it.
func ParseCode(text string) (Code, error) { return seclink.ParseCode(text) }

// authConfig is what WithSecret, WithCode and WithInsecure chose.
type authConfig struct {
	mode   string // "" (none chosen), AuthSecret, AuthCode or AuthInsecure
	secret Secret
	code   Code
}

func (c *config) setAuth(a authConfig, what string) {
	if c.auth.mode != "" && c.auth.mode != a.mode {
		c.invalid("%s: WithSecret, WithCode and WithInsecure exclude each other", what)
		return
	}
	c.auth = a
}

// WithSecret makes [Listen] and [Dial] authenticate the peer with a shared
// secret, and the name they are given a label only the holders of the
// secret can use: the rendezvous server sees rendezvous.ProtectedName of an
// Ed25519 key derived from (secret, name), and both peers prove they hold
// that key. The connection is TLS 1.3, mutually authenticated with keys
// derived from (secret, name).
func WithSecret(s Secret) Option {
	return func(c *config) {
		if s.IsZero() {
			c.invalid("WithSecret: the zero Secret")
			return
		}
		c.setAuth(authConfig{mode: AuthSecret, secret: s}, "WithSecret")
	}
}

// WithCode makes [Listen] and [Dial] use a one-time code: the rendezvous
// name is the code's nameplate (give "" or code.Name() as the name), and
// the peers run CPace with the code's words before TLS 1.3. A [Listener]
// with a code accepts one connection, or gives up after 3 failed attempts
// ([ErrCodeRetired]).
func WithCode(code Code) Option {
	return func(c *config) {
		if code.IsZero() {
			c.invalid("WithCode: the zero Code")
			return
		}
		c.setAuth(authConfig{mode: AuthCode, code: code}, "WithCode")
	}
}

// WithInsecure makes [Listen] and [Dial] use the name as given, with no
// authentication and no encryption: whoever knows or guesses the name
// owns the connection, and the rendezvous server or anyone on the path
// can read and change it. End-of-stream confirmation still applies.
func WithInsecure() Option {
	return func(c *config) { c.setAuth(authConfig{mode: AuthInsecure}, "WithInsecure") }
}

// WithHandshakeTimeout bounds the secure link's handshake after a punch
// (default 10 s; d must be positive).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithHandshakeTimeout(%v): must be positive", d)
			return
		}
		c.handshake = d
	}
}

// serverName returns the name the rendezvous server sees for the label
// name, and the rendezvous options that prove we may use it.
func (a *authConfig) serverName(name string) (string, []rendezvous.ClientOption, error) {
	switch a.mode {
	case AuthSecret:
		if name == "" {
			return "", nil, errors.New("punch: WithSecret needs a name (the label both peers give)")
		}
		key := seclink.OwnerKey(a.secret, name)
		return rendezvous.ProtectedName(key.Public().(ed25519.PublicKey)), []rendezvous.ClientOption{rendezvous.WithOwnerKey(key)}, nil
	case AuthCode:
		if name != "" && name != a.code.Name() {
			return "", nil, fmt.Errorf("punch: WithCode: the name is the code's nameplate %q, not %q (give \"\")", a.code.Name(), name)
		}
		return a.code.Name(), nil, nil
	case AuthInsecure:
		return name, nil, nil
	}
	return "", nil, ErrNoAuth
}

// secure runs the link's handshake on a punched connection and wraps it
// in end-of-stream confirmation. label is the name the application gave.
// On failure raw is closed.
func (c *config) secure(ctx context.Context, raw *Conn, role Role, tag [16]byte, label string) (*Conn, error) {
	out := &Conn{nc: raw.nc, tcp: raw.tcp, info: raw.info}
	out.info.Auth = c.auth.mode
	if c.auth.mode == AuthInsecure {
		out.link = confirm.New(raw.nc)
		return out, nil
	}
	var auth seclink.Auth
	if c.auth.mode == AuthSecret {
		auth = seclink.SecretAuth(c.auth.secret, label)
	} else {
		auth = seclink.CodeAuth(c.auth.code)
	}
	sr := seclink.RoleControlled
	if role == RoleControlling {
		sr = seclink.RoleControlling
	}
	hctx, cancel := context.WithTimeout(ctx, c.handshake)
	defer cancel()
	start := time.Now()
	sl, err := seclink.Handshake(hctx, raw.nc, sr, seclink.SessionTag(tag), auth, seclink.WithLogger(c.logger))
	if err != nil {
		raw.abort()
		return nil, fmt.Errorf("punch: securing the connection to %v: %w", raw.info.Remote, err)
	}
	out.info.Handshake = time.Since(start)
	out.link = confirm.New(sl)
	return out, nil
}

// Finish ends our direction of the stream (CloseWrite, if not done yet)
// and waits until the peer's application has read everything we sent and
// the peer's own stream has ended cleanly and been read by us. Data the
// peer sends must be read to io.EOF (before or concurrently), or Finish
// waits until ctx ends. The error is nil only for a complete delivery;
// otherwise it matches [ErrIncomplete] and is an *[IncompleteError] with
// the counts. Call Close afterwards.
func (c *Conn) Finish(ctx context.Context) (Delivery, error) {
	if c.link == nil {
		return Delivery{}, ErrNotConfirmed
	}
	return c.link.Finish(ctx)
}

// Delivery returns the byte counts of a confirmed stream so far.
func (c *Conn) Delivery() Delivery {
	if c.link == nil {
		return Delivery{}
	}
	return c.link.Delivery()
}

// earlyLink is the controlling side's handshake, started before the punch
// so that its first flight rides behind the nominating hello.
type earlyLink struct {
	ec     *earlyConn
	cancel context.CancelFunc
	done   chan struct{}
	sl     *seclink.Conn
	err    error
}

// startEarly begins the controlling side's handshake on an earlyConn. It
// returns nil for WithInsecure, which has no handshake.
func (c *config) startEarly(ctx context.Context, tag [16]byte, label string) *earlyLink {
	if c.auth.mode != AuthSecret && c.auth.mode != AuthCode {
		return nil
	}
	auth := seclink.CodeAuth(c.auth.code)
	if c.auth.mode == AuthSecret {
		auth = seclink.SecretAuth(c.auth.secret, label)
	}
	hctx, cancel := context.WithCancel(ctx)
	el := &earlyLink{ec: newEarlyConn(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(el.done)
		el.sl, el.err = seclink.Handshake(hctx, el.ec, seclink.RoleControlling, seclink.SessionTag(tag), auth, seclink.WithLogger(c.logger))
	}()
	return el
}

// abort ends the handshake of a punch that failed.
func (el *earlyLink) abort(err error) {
	el.ec.fail(err)
	el.cancel()
	<-el.done
}

// finishEarly hands the punched connection to the handshake started by
// startEarly and waits for it, for at most the handshake timeout.
func (c *config) finishEarly(ctx context.Context, raw *Conn, el *earlyLink) (*Conn, error) {
	start := time.Now()
	if err := el.ec.attach(raw.nc, raw.earlySent); err != nil {
		el.abort(err)
		raw.abort()
		return nil, fmt.Errorf("punch: securing the connection to %v: %w", raw.info.Remote, err)
	}
	timer := time.AfterFunc(c.handshake, el.cancel)
	<-el.done
	timer.Stop()
	el.cancel()
	if el.err != nil {
		raw.abort()
		return nil, fmt.Errorf("punch: securing the connection to %v: %w", raw.info.Remote, el.err)
	}
	out := &Conn{nc: raw.nc, tcp: raw.tcp, info: raw.info, link: confirm.New(el.sl)}
	out.info.Auth = c.auth.mode
	out.info.Handshake = time.Since(start)
	return out, nil
}
