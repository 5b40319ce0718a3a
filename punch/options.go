package punch

import (
	"log/slog"
	"net/netip"
	"time"
)

// Option configures an [Endpoint], [Punch], Listen or Dial.
type Option func(*config)

// Defaults, chosen for punching through NATs across the internet rather than
// for loopback speed.
const (
	// Long enough for one SYN round trip on a slow path, short enough that a
	// SYN lost to a NAT that was not yet open is resent well before the
	// kernel's own retransmission backoff would do it. Also the shortest
	// interval at which Linux retransmits a SYN for us (TCP_RTO_MAX_MS).
	defaultAttemptTimeout = time.Second
	defaultPunchTimeout   = 30 * time.Second
	// Retries after a failed attempt wait a random time in this range: a
	// fixed period phase-locks with the peer's and the SYNs never cross.
	defaultJitterMin = 25 * time.Millisecond
	defaultJitterMax = 125 * time.Millisecond
	// The hello exchange takes half a round trip to one round trip.
	defaultVerifyTimeout = 3 * time.Second
	defaultKeepAlive     = 15 * time.Second
)

type config struct {
	logger         *slog.Logger
	events         func(Event)
	attemptTimeout time.Duration
	jitterMin      time.Duration
	jitterMax      time.Duration
	keepAlive      time.Duration
	verifyTimeout  time.Duration
	localAddr      netip.AddrPort // for Listen and Dial; NewEndpoint takes its address as an argument
	punchTimeout   time.Duration  // for Listen: bounds each punch to a dialer
	relayMode      RelayMode      // relay.go
	relayBudget    time.Duration

	// Testing hooks, set only by this package's tests.
	noListen bool // never listen: forces the dial-only (simultaneous-open) path
	dialSelf bool // dial candidates equal to our own endpoint, to exercise the post-connect guard
}

func newConfig(opts []Option) config {
	c := config{
		logger:         slog.New(slog.DiscardHandler),
		attemptTimeout: defaultAttemptTimeout,
		jitterMin:      defaultJitterMin,
		jitterMax:      defaultJitterMax,
		keepAlive:      defaultKeepAlive,
		verifyTimeout:  defaultVerifyTimeout,
		punchTimeout:   defaultPunchTimeout,
		relayBudget:    DefaultRelayBudget,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.attemptTimeout <= 0 {
		c.attemptTimeout = defaultAttemptTimeout
	}
	if c.verifyTimeout <= 0 {
		c.verifyTimeout = defaultVerifyTimeout
	}
	c.jitterMin = max(c.jitterMin, 0)
	c.jitterMax = max(c.jitterMax, c.jitterMin)
	return c
}

// WithLogger sets the logger for diagnostics (attempts, rejections,
// nominations) at debug level. The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithEvents calls fn with human-readable progress. Calls are serialized per
// Endpoint, so fn need not be safe for concurrent use, but it runs on the
// engine's goroutines and must return quickly.
func WithEvents(fn func(Event)) Option { return func(c *config) { c.events = fn } }

// WithAttemptTimeout sets how long a SYN may go unanswered before it is sent
// again, sooner than the kernel's exponential SYN retransmission would. On
// Linux 6.15 and later, with d of at least one second, the kernel resends
// the SYN on the same socket (same sequence number, which NAT connection
// tracking requires; see [sockopt.RetransmitSYN]); elsewhere the same
// holds while the kernel's own timer resends within d (Linux 6.7+: the
// first four SYNs), and then a socket still in SYN-SENT is closed and the
// candidate dialed again.
func WithAttemptTimeout(d time.Duration) Option { return func(c *config) { c.attemptTimeout = d } }

// WithRetryJitter sets the range of the random pause before a candidate is
// dialed again. Keep it random: a fixed period phase-locks with the peer's
// retries and the SYNs never cross.
func WithRetryJitter(minPause, maxPause time.Duration) Option {
	return func(c *config) { c.jitterMin, c.jitterMax = minPause, maxPause }
}

// WithKeepAlive sets the TCP keepalive period of the punched connection,
// which also keeps NAT mappings alive. Zero keeps the default (15s); a
// negative value disables keepalive.
func WithKeepAlive(d time.Duration) Option {
	return func(c *config) {
		if d != 0 {
			c.keepAlive = d
		}
	}
}

// WithVerifyTimeout bounds the hello exchange on one raw connection.
func WithVerifyTimeout(d time.Duration) Option { return func(c *config) { c.verifyTimeout = d } }

// WithLocalAddr sets the local address and port Listen and Dial bind. It has
// no effect on [NewEndpoint] and [Punch], which take the address explicitly.
func WithLocalAddr(a netip.AddrPort) Option { return func(c *config) { c.localAddr = a } }

// WithPunchTimeout bounds each punch a [Listener] starts for a dialer
// (default 30 s). [Dial] is bounded by its context instead.
func WithPunchTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.punchTimeout = d
		}
	}
}
