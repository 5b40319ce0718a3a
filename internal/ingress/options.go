package ingress

import (
	"log/slog"
	"time"
)

// Defaults.
const (
	// DefaultHeaderTimeout bounds the wait for a PROXY header (and, from
	// other sources, for the first bytes that show there is none). A
	// missing timeout was go-proxyproto's CVE-2021-23409.
	DefaultHeaderTimeout = 5 * time.Second
	// DefaultMaxPending caps connections whose header is still awaited;
	// more are closed at once, so a flood of silent connections costs a
	// bounded number of goroutines.
	DefaultMaxPending = 1024
	// DefaultWatchWindow is how many recent accepts the balancer watcher
	// looks at, and DefaultWatchShare the share of them from one address
	// that makes it warn.
	DefaultWatchWindow = 256
	DefaultWatchShare  = 0.8
	// DefaultWatchEvery is the least time between two warnings.
	DefaultWatchEvery = time.Hour
)

// Option configures [ProxyListener] and [WatchBalancer].
type Option func(*config)

type config struct {
	log           *slog.Logger
	headerTimeout time.Duration
	maxPending    int
	count         func(result string)
	window        int
	share         float64
	every         time.Duration
}

func newConfig(opts []Option) *config {
	c := &config{
		log:           slog.New(slog.DiscardHandler),
		headerTimeout: DefaultHeaderTimeout,
		maxPending:    DefaultMaxPending,
		count:         func(string) {},
		window:        DefaultWatchWindow,
		share:         DefaultWatchShare,
		every:         DefaultWatchEvery,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithLogger sets the logger (the default discards).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithHeaderTimeout sets how long a connection may take to send its PROXY
// header (default 5 s).
func WithHeaderTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.headerTimeout = d
		}
	}
}

// WithMaxPending caps connections whose header is awaited (default 1024).
func WithMaxPending(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxPending = n
		}
	}
}

// WithCounter is called with each connection's PROXY outcome: "ok",
// "local" (a balancer's health check), "missing", "invalid", "untrusted"
// (a header from a source not trusted) or "overload" (too many pending).
// It must not block.
func WithCounter(f func(result string)) Option {
	return func(c *config) {
		if f != nil {
			c.count = f
		}
	}
}

// WithWatch sets the balancer watcher's window (accepts looked at), the
// share from one address that makes it warn, and the least time between
// warnings.
func WithWatch(window int, share float64, every time.Duration) Option {
	return func(c *config) {
		if window > 1 {
			c.window = window
		}
		if share > 0 && share <= 1 {
			c.share = share
		}
		if every > 0 {
			c.every = every
		}
	}
}
