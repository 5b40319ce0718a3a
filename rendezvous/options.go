package rendezvous

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// ServerOption configures a [Server] (see [NewServer]).
type ServerOption interface{ applyServer(*serverConfig) }

// ClientOption configures [Register], [Connect] and [MappedAddress].
type ClientOption interface{ applyClient(*clientConfig) }

// Option configures both sides; it is a ServerOption and a ClientOption.
type Option interface {
	ServerOption
	ClientOption
}

type serverOptionFunc func(*serverConfig)

func (f serverOptionFunc) applyServer(c *serverConfig) { f(c) }

type clientOptionFunc func(*clientConfig)

func (f clientOptionFunc) applyClient(c *clientConfig) { f(c) }

type sharedOption struct {
	server serverOptionFunc
	client clientOptionFunc
}

func (o sharedOption) applyServer(c *serverConfig) { o.server(c) }
func (o sharedOption) applyClient(c *clientConfig) { o.client(c) }

// Defaults. They are tuned for an Internet-facing server: long enough for
// slow mobile links, short enough that dead peers and slowloris clients are
// cut within a minute.
const (
	DefaultMaxMessageSize  = 2048
	DefaultMaxNameLength   = 64
	DefaultMaxCandidates   = 16
	DefaultMaxConnsPerIP   = 64
	DefaultMaxConns        = 50000
	DefaultReadTimeout     = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultKeepAlive       = 15 * time.Second
	DefaultPingTimeout     = 2 * time.Second
	DefaultRequestTimeout  = 15 * time.Second
	DefaultBackoffMin      = 200 * time.Millisecond
	DefaultBackoffMax      = 10 * time.Second
	maxWireMessageSize     = 20 + 0xFFFF // the STUN length field is 16 bits
	maxClientMessageSize   = maxWireMessageSize
	goodbyeWriteTimeout    = time.Second
	defaultNameCharsetDesc = "letters, digits, '.', '_' and '-'"
)

type serverConfig struct {
	log           *slog.Logger
	maxMessage    int
	maxName       int
	nameRule      func(string) error
	maxCands      int
	maxConnsPerIP int
	maxConns      int
	readTimeout   time.Duration
	idleTimeout   time.Duration
	writeTimeout  time.Duration
	keepAlive     time.Duration
	pingTimeout   time.Duration
	kernelRTT     bool
	relay         relayConfig // relay_options.go
	tracer        Tracer
	err           error // the invalid options, reported by Serve

	// Rate limits and candidate policy (ratelimit.go, candpolicy.go).
	registerRate, connectRate, unknownRate, nameConnectRate rate
	v4Bits, v6Bits                                          int
	maxRateEntries                                          int
	loopback                                                int8 // 0 auto (allowed on a loopback server), 1 allow, -1 withhold

	// NAT behaviour discovery (altaddr.go, dialback.go).
	alts             []netip.AddrPort
	dialBackTimeout  time.Duration
	dialBackBurst    int
	dialBackInFlight int
}

func newServerConfig(opts []ServerOption) *serverConfig {
	c := &serverConfig{
		log:           slog.New(slog.DiscardHandler),
		maxMessage:    DefaultMaxMessageSize,
		maxName:       DefaultMaxNameLength,
		maxCands:      DefaultMaxCandidates,
		maxConnsPerIP: DefaultMaxConnsPerIP,
		maxConns:      DefaultMaxConns,
		readTimeout:   DefaultReadTimeout,
		idleTimeout:   DefaultIdleTimeout,
		writeTimeout:  DefaultWriteTimeout,
		keepAlive:     DefaultKeepAlive,
		pingTimeout:   DefaultPingTimeout,
		kernelRTT:     true,
		relay:         defaultRelayConfig(),
		tracer:        NopTracer{},

		registerRate:    rate{DefaultRegisterRate, DefaultRegisterBurst},
		connectRate:     rate{DefaultConnectRate, DefaultConnectBurst},
		unknownRate:     rate{DefaultUnknownNameRate, DefaultUnknownNameBurst},
		nameConnectRate: rate{DefaultNameConnectRate, DefaultNameConnectBurst},
		v4Bits:          DefaultIPv4PrefixBits,
		v6Bits:          DefaultIPv6PrefixBits,
		maxRateEntries:  DefaultMaxRateEntries,

		dialBackTimeout:  DefaultDialBackTimeout,
		dialBackBurst:    DefaultDialBackBurst,
		dialBackInFlight: DefaultDialBackInFlight,
	}
	for _, o := range opts {
		if o != nil {
			o.applyServer(c)
		}
	}
	if c.nameRule == nil {
		c.nameRule = defaultNameRule(c.maxName)
	}
	return c
}

type clientConfig struct {
	log            *slog.Logger
	maxMessage     int
	keepAlive      time.Duration
	requestTimeout time.Duration
	backoffMin     time.Duration
	backoffMax     time.Duration
	natCheck       bool               // the quick NAT check before Register and Connect (quickcheck.go)
	ownerKey       ed25519.PrivateKey // WithOwnerKey (ownerproof_client.go)

	err error // the invalid options, reported by every call

	onCancel  func(tag [16]byte) // cancel_client.go
	onRefused func(err error)

	// goroutineExit, when set (by tests only), runs as each goroutine of a
	// control connection ends.
	goroutineExit func()
}

// invalidOption is the error of an option given a value that means
// nothing: it names the option and says what it accepts.
func invalidOption(call, want string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, call, want)
}

// Options report invalid values when applied rather than clamp them: the
// caller sees its mistake at Serve, Register, Connect or MappedAddress, and
// the signatures stay those of plain functional options.
func (c *serverConfig) invalid(call, want string) {
	c.err = errors.Join(c.err, invalidOption(call, want))
}

func (c *clientConfig) invalid(call, want string) {
	c.err = errors.Join(c.err, invalidOption(call, want))
}

func newClientConfig(opts []ClientOption) *clientConfig {
	c := &clientConfig{
		log:            slog.New(slog.DiscardHandler),
		maxMessage:     maxClientMessageSize,
		keepAlive:      DefaultKeepAlive,
		requestTimeout: DefaultRequestTimeout,
		backoffMin:     DefaultBackoffMin,
		backoffMax:     DefaultBackoffMax,
	}
	for _, o := range opts {
		if o != nil {
			o.applyClient(c)
		}
	}
	return c
}

// WithLogger sets the logger of a server or a client. The default, and
// nil, discards.
func WithLogger(l *slog.Logger) Option {
	return sharedOption{
		server: func(c *serverConfig) {
			if l != nil {
				c.log = l
			}
		},
		client: func(c *clientConfig) {
			if l != nil {
				c.log = l
			}
		},
	}
}

// WithMaxMessageSize caps the size of a message read (header included).
// A bigger message closes the connection. Servers default to
// DefaultMaxMessageSize; clients accept any STUN message (64 KiB) unless
// told otherwise. n must lie in [20, 65555], a header alone to the most
// the 16-bit STUN length allows.
func WithMaxMessageSize(n int) Option {
	ok := n >= headerSize && n <= maxWireMessageSize
	call, want := fmt.Sprintf("WithMaxMessageSize(%d)", n), fmt.Sprintf("must be %d to %d bytes", headerSize, maxWireMessageSize)
	return sharedOption{
		server: func(c *serverConfig) {
			if !ok {
				c.invalid(call, want)
				return
			}
			c.maxMessage = n
		},
		client: func(c *clientConfig) {
			if !ok {
				c.invalid(call, want)
				return
			}
			c.maxMessage = n
		},
	}
}

// WithKeepAlive sets how often an idle control connection is pinged (a
// tcpunch Ping request; TCP keepalive uses the same period). A server pings
// its listeners and dialers; a client pings its server and gives the
// connection up after three periods without hearing from it. d must be
// positive.
func WithKeepAlive(d time.Duration) Option {
	call := fmt.Sprintf("WithKeepAlive(%v)", d)
	return sharedOption{
		server: func(c *serverConfig) {
			if d <= 0 {
				c.invalid(call, "the period must be positive")
				return
			}
			c.keepAlive = d
		},
		client: func(c *clientConfig) {
			if d <= 0 {
				c.invalid(call, "the period must be positive")
				return
			}
			c.keepAlive = d
		},
	}
}

// WithMaxNameLength caps the length of a registered name (default 64), in
// bytes, from 1 to 255 (the most a client sends). It applies to the
// default name rule; a [WithNameValidator] rule brings its own.
func WithMaxNameLength(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 1 || n > 255 {
			c.invalid(fmt.Sprintf("WithMaxNameLength(%d)", n), "must be 1 to 255 bytes")
			return
		}
		c.maxName = n
	})
}

// WithNameValidator replaces the default name rule (1 to the maximum
// length of letters, digits, '.', '_' and '-'). The returned error's text
// is sent to the client as the reason of a 400 response. nil keeps the
// default rule.
func WithNameValidator(f func(name string) error) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.nameRule = f })
}

// WithMaxCandidates caps the host candidates a client may send (default
// 16). 0 admits none: peers then learn only each other's observed
// endpoint. n must not be negative.
func WithMaxCandidates(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 0 {
			c.invalid(fmt.Sprintf("WithMaxCandidates(%d)", n), "must be 0 or more")
			return
		}
		c.maxCands = n
	})
}

// WithMaxConnsPerIP caps simultaneous connections from one source (an
// IPv4 address or an IPv6 /64 by default; see [WithSourcePrefix])
// (default 64). 0 removes the cap; n must not be negative.
func WithMaxConnsPerIP(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 0 {
			c.invalid(fmt.Sprintf("WithMaxConnsPerIP(%d)", n), "must be 0 (no cap) or more")
			return
		}
		c.maxConnsPerIP = n
	})
}

// WithMaxConns caps simultaneous connections (default 50000). 0 removes the
// cap; n must not be negative.
func WithMaxConns(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 0 {
			c.invalid(fmt.Sprintf("WithMaxConns(%d)", n), "must be 0 (no cap) or more")
			return
		}
		c.maxConns = n
	})
}

// WithReadTimeout bounds how long a message may take to arrive once its
// first byte has (so a client dribbling a header is cut), and how long a new
// connection may wait before its first message (default 10 s). d must be
// positive.
func WithReadTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithReadTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.readTimeout = d
	})
}

// WithIdleTimeout closes a connection from which nothing arrived for d
// (default 60 s). Live tcpunch clients answer the server's pings, so only
// dead ones (and silent plain STUN clients) hit it; a dead listener's name
// is then freed. d must be positive.
func WithIdleTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithIdleTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.idleTimeout = d
	})
}

// WithWriteTimeout bounds one write to a client (default 10 s): a client
// that stops reading is cut instead of blocking the server. d must be
// positive.
func WithWriteTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithWriteTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.writeTimeout = d
	})
}

// WithPingTimeout bounds the wait for a Ping answer when the server measures
// a round-trip time itself (default 2 s). d must be positive.
func WithPingTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithPingTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.pingTimeout = d
	})
}

// WithKernelRTT chooses whether the synchronized start uses the kernel's
// smoothed RTT of the control connection (Linux, the default) or always
// measures it with a Ping. A relay or proxy between server and client hides
// the real RTT from the kernel; turn this off there.
func WithKernelRTT(use bool) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.kernelRTT = use })
}

// WithTracer has the server report its events to t, for metrics (see
// [Tracer]; package tcpunch/internal/metrics is the Prometheus one). t is
// called synchronously from the connection goroutines and must not block.
// The default, and nil, is [NopTracer].
func WithTracer(t Tracer) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if t == nil {
			t = NopTracer{}
		}
		c.tracer = t
	})
}

// WithBackoff sets the retry backoff of the client: between the tries of
// a first [Register] and of a [Connect] while the server cannot be reached,
// and between the reconnections of a live [Registration]. It is a jittered
// delay starting near minDelay, doubling per failed try, capped at maxDelay
// (defaults 200 ms and 10 s). minDelay must be positive and maxDelay at
// least minDelay.
func WithBackoff(minDelay, maxDelay time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if minDelay <= 0 || maxDelay < minDelay {
			c.invalid(fmt.Sprintf("WithBackoff(%v, %v)", minDelay, maxDelay), "the first delay must be positive and the cap at least as long")
			return
		}
		c.backoffMin, c.backoffMax = minDelay, maxDelay
	})
}

// WithRequestTimeout bounds connecting to the server plus one request and
// its response (default 15 s), on top of the caller's context; each retry
// gets its own. d must be positive.
func WithRequestTimeout(d time.Duration) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithRequestTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.requestTimeout = d
	})
}
