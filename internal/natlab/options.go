package natlab

import "log/slog"

// Option configures a [Lab].
type Option func(*config)

type config struct {
	logger   *slog.Logger
	lossSeed uint64
	seeded   bool
}

func newConfig(opts []Option) config {
	c := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithLogger logs what the lab does (every command it runs, at debug level)
// to l. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithLossSeed makes the random loss of [Lab.SetLoss] reproducible. Without
// it every stage draws a random seed.
func WithLossSeed(seed uint64) Option {
	return func(c *config) { c.lossSeed, c.seeded = seed, true }
}
