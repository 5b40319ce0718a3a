package rendezvous

import (
	"fmt"
	"time"
)

// Relay defaults: what a public server can offer without being an open
// bulk proxy. Every one is an option and a `tcpunch serve` flag.
const (
	DefaultRelaySessions          = 1024
	DefaultRelaySessionsPerSource = 16
	DefaultRelayIdleTimeout       = 5 * time.Minute
	DefaultRelayMaxDuration       = 24 * time.Hour
	DefaultRelayTokenTTL          = 60 * time.Second
)

type relayConfig struct {
	enabled     bool
	sessions    int           // in total; 0: no cap
	perSource   int           // per source prefix (IPv4 /32, IPv6 /64); 0: no cap
	rate        int64         // bytes/s per direction of a session; 0: unlimited
	maxBytes    int64         // bytes per session, both directions; 0: unlimited
	idle        time.Duration // a session with nothing crossing for this long ends
	maxDuration time.Duration // 0: unlimited
	tokenTTL    time.Duration // an unused token expires after this
	endGrace    time.Duration // how long a frame in flight may take to finish when a session ends
}

func defaultRelayConfig() relayConfig {
	return relayConfig{
		enabled:     true,
		sessions:    DefaultRelaySessions,
		perSource:   DefaultRelaySessionsPerSource,
		idle:        DefaultRelayIdleTimeout,
		maxDuration: DefaultRelayMaxDuration,
		tokenTTL:    DefaultRelayTokenTTL,
		endGrace:    2 * time.Second,
	}
}

// WithRelay turns the server's relay on (the default) or off. Off, peer
// info carries no RELAY-TOKEN and Relay requests are refused, so peers
// without a direct path fail as they would against an old server.
func WithRelay(on bool) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.relay.enabled = on })
}

// WithRelaySessions caps relay sessions held at once, in total and per
// source (an IPv4 address or an IPv6 /64; a session counts once for each
// source its legs come from). Defaults 1024 and 16; 0 removes a cap;
// negative values are errors. A session holds its slots from its first leg
// until its end.
func WithRelaySessions(total, perSource int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if total < 0 || perSource < 0 {
			c.invalid(fmt.Sprintf("WithRelaySessions(%d, %d)", total, perSource), "caps must be 0 (none) or more")
			return
		}
		c.relay.sessions, c.relay.perSource = total, perSource
	})
}

// WithRelayRate caps each direction of a relay session to bytesPerSecond
// (0, the default, is unlimited; negative is an error).
func WithRelayRate(bytesPerSecond int64) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if bytesPerSecond < 0 {
			c.invalid(fmt.Sprintf("WithRelayRate(%d)", bytesPerSecond), "must be 0 (unlimited) or more")
			return
		}
		c.relay.rate = bytesPerSecond
	})
}

// WithRelayMaxBytes ends a relay session (END 413) once n bytes crossed it,
// both directions together (0, the default, is unlimited; negative is an
// error).
func WithRelayMaxBytes(n int64) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 0 {
			c.invalid(fmt.Sprintf("WithRelayMaxBytes(%d)", n), "must be 0 (unlimited) or more")
			return
		}
		c.relay.maxBytes = n
	})
}

// WithRelayIdleTimeout ends a relay session (END 408) when no frame crossed
// it in either direction for d (default 5 min). The legs' TCP keepalive
// keeps NAT mappings alive but does not count as traffic; the frames a
// punch peer's path layer sends after 30 s of silence (KEEPALIVE) do, so
// with d above that only sessions whose peers stopped end. d must be
// positive.
func WithRelayIdleTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithRelayIdleTimeout(%v)", d), "the timeout must be positive")
			return
		}
		c.relay.idle = d
	})
}

// WithRelayMaxDuration ends a relay session (END 440) d after its legs
// joined (default 24 h; 0 is unlimited; negative is an error).
func WithRelayMaxDuration(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d < 0 {
			c.invalid(fmt.Sprintf("WithRelayMaxDuration(%v)", d), "must be 0 (unlimited) or more")
			return
		}
		c.relay.maxDuration = d
	})
}

// WithRelayTokenTTL sets how long a relay token stays valid unused after
// the pairing that issued it (default 60 s), which also bounds how long a
// first leg waits for the second. d must be positive.
func WithRelayTokenTTL(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if d <= 0 {
			c.invalid(fmt.Sprintf("WithRelayTokenTTL(%v)", d), "the time must be positive")
			return
		}
		c.relay.tokenTTL = d
	})
}
