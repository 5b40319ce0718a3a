package punch

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
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
	rendezvous     []rendezvous.ClientOption
	auth           authConfig    // WithSecret, WithCode, WithInsecure (secure.go)
	handshake      time.Duration // WithHandshakeTimeout (secure.go)
	err            error         // the options that made no sense, joined
	noReport       bool          // for Listen and Dial: WithoutOutcomeReport

	// Bounds on the work untrusted dialers can cause (budget.go).
	synRate         int // SYNs per second per punch
	endpointSYNRate int // SYNs per second per Endpoint
	maxPunches      int // concurrent punches per Listener

	// Testing hooks, set only by this package's tests.
	noListen bool         // never listen: forces the dial-only (simultaneous-open) path
	dialSelf bool         // dial candidates equal to our own endpoint, to exercise the post-connect guard
	upgrade  *upgradePlan // the upgrade's timing (upgrade.go); nil: defaultUpgradePlan
}

// newConfig applies opts over the defaults. An option given a value that
// makes no sense is an error naming it, never silently replaced.
func newConfig(opts []Option) (config, error) {
	c := config{
		logger:         slog.New(slog.DiscardHandler),
		attemptTimeout: defaultAttemptTimeout,
		jitterMin:      defaultJitterMin,
		jitterMax:      defaultJitterMax,
		keepAlive:      defaultKeepAlive,
		verifyTimeout:  defaultVerifyTimeout,
		punchTimeout:   defaultPunchTimeout,
		relayBudget:    DefaultRelayBudget,
		handshake:      defaultHandshakeTimeout,

		synRate:         defaultSYNsPerSecond,
		endpointSYNRate: defaultEndpointSYNsPerSecond,
		maxPunches:      defaultMaxPunches,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c, c.err
}

// invalid records an option value that makes no sense.
func (c *config) invalid(format string, args ...any) {
	c.err = errors.Join(c.err, fmt.Errorf("punch: "+format, args...))
}

// WithLogger sets the logger for diagnostics (attempts, rejections,
// nominations) at debug level. The default, and nil, discard everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithEvents calls fn with human-readable progress. Calls are serialized per
// Endpoint, so fn need not be safe for concurrent use, but it runs on the
// engine's goroutines and must return quickly. nil means no callback.
func WithEvents(fn func(Event)) Option { return func(c *config) { c.events = fn } }

// WithAttemptTimeout sets how long a SYN may go unanswered before it is sent
// again, sooner than the kernel's exponential SYN retransmission would
// (default 1 s; d must be positive). On Linux 6.15 and later, with d of at
// least one second, the kernel resends the SYN on the same socket (same
// sequence number, which NAT connection tracking requires; see
// [sockopt.RetransmitSYN]); elsewhere the same holds while the kernel's own
// timer resends within d (Linux 6.7+: the first four SYNs), and then a
// socket still in SYN-SENT is closed and the candidate dialed again.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithAttemptTimeout(%v): must be positive", d)
			return
		}
		c.attemptTimeout = d
	}
}

// WithRetryJitter sets the range [minPause, maxPause] of the random pause
// before a candidate is dialed again after an attempt failed for any reason
// but two (default 25–125 ms; 0 ≤ minPause ≤ maxPause). After a refusal
// (an RST: the far NAT or host answered, and, if a NAT, forgot the mapping)
// the pause is scaled to the round trip the refused attempt took instead:
// 10 ms (the floor, so a refusing port is not dialed hundreds of times a
// second) plus a random part below min(max(2 × that time, 10 ms),
// maxPause), so that the two peers' SYNs, which must be in flight at the
// same moment, are not kept a whole jitter apart. After an attempt that got no answer at all within the
// attempt timeout, the candidate is dialed again at once. Keep the range
// random: a fixed period phase-locks with the peer's retries and the SYNs
// never cross.
func WithRetryJitter(minPause, maxPause time.Duration) Option {
	return func(c *config) {
		if minPause < 0 || maxPause < minPause {
			c.invalid("WithRetryJitter(%v, %v): want 0 <= min <= max", minPause, maxPause)
			return
		}
		c.jitterMin, c.jitterMax = minPause, maxPause
	}
}

// WithKeepAlive sets the TCP keepalive period of the punched connection,
// which also keeps NAT mappings alive. Zero keeps the default (15 s); a
// negative value disables keepalive.
func WithKeepAlive(d time.Duration) Option {
	return func(c *config) {
		if d != 0 {
			c.keepAlive = d
		}
	}
}

// WithVerifyTimeout bounds the hello exchange on one raw connection
// (default 3 s; d must be positive).
func WithVerifyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithVerifyTimeout(%v): must be positive", d)
			return
		}
		c.verifyTimeout = d
	}
}

// WithLocalAddr sets the local address and port Listen and Dial bind (the
// default, the zero AddrPort, is 0.0.0.0 and a port the kernel picks). It
// has no effect on [NewEndpoint] and [Punch], which take the address
// explicitly.
func WithLocalAddr(a netip.AddrPort) Option { return func(c *config) { c.localAddr = a } }

// WithPunchTimeout bounds each punch a [Listener] starts for a dialer
// (default 30 s; d must be positive). [Dial] is bounded by its context
// instead.
func WithPunchTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithPunchTimeout(%v): must be positive", d)
			return
		}
		c.punchTimeout = d
	}
}

// WithRendezvousOptions passes options to the rendezvous client of [Listen]
// and [Dial]: its request timeout, reconnection backoff, keepalive, ...
// (see package rendezvous). They apply after this package's own
// (rendezvous.WithLogger with the logger of [WithLogger], and
// rendezvous.WithNATCheck(true): Listen and Dial measure and send their
// NAT class), so they may override them. [NewEndpoint] and [Punch] have no rendezvous and ignore them.
func WithRendezvousOptions(opts ...rendezvous.ClientOption) Option {
	return func(c *config) { c.rendezvous = append(c.rendezvous, opts...) }
}

// rendezvousOptions are the options of the rendezvous client.
func (c *config) rendezvousOptions() []rendezvous.ClientOption {
	return append([]rendezvous.ClientOption{rendezvous.WithLogger(c.logger), rendezvous.WithNATCheck(true)}, c.rendezvous...)
}

// WithoutOutcomeReport keeps Listen and Dial from telling the rendezvous
// server how each punch went. By default they send it a small report after
// every punch (direct or failed, the method, the time to connect and the
// attempts; never an address: docs/PROTOCOL.md, "PunchReport"), which the
// server only counts, as its operator's success rate.
func WithoutOutcomeReport() Option { return func(c *config) { c.noReport = true } }
