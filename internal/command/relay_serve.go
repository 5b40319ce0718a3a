package command

import (
	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// ServeRelayEnv is the environment variable of serve's --relay on|off. It
// is not TCPUNCH_RELAY, which is listen's and dial's --relay
// auto|never|always: a shell or unit file that sets one for the clients
// must not break (or turn off) a server started from it.
const ServeRelayEnv = "TCPUNCH_SERVE_RELAY"

// RelayServeFlags are the relay flags of `tcpunch serve`; envs names their
// environment variables (but --relay's is [ServeRelayEnv]).
func RelayServeFlags(envs func(string) []string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "relay", Value: "on", EnvVars: []string{ServeRelayEnv},
			Usage: "`on|off`: relay peers that cannot connect directly (only their end-to-end stream crosses the server; env " + ServeRelayEnv + ", not TCPUNCH_RELAY, which is the clients' --relay)"},
		&cli.IntFlag{Name: "relay-sessions", Value: rendezvous.DefaultRelaySessions, EnvVars: envs("relay-sessions"),
			Usage: "relay sessions held at once, in total (0: no cap)"},
		&cli.IntFlag{Name: "relay-sessions-per-source", Value: rendezvous.DefaultRelaySessionsPerSource, EnvVars: envs("relay-sessions-per-source"),
			Usage: "relay sessions held at once per source (an IPv4 address or an IPv6 /64; 0: no cap)"},
		&cli.Int64Flag{Name: "relay-rate", EnvVars: envs("relay-rate"),
			Usage: "cap each direction of a relay session to this many `BYTES` per second (0: unlimited)"},
		&cli.Int64Flag{Name: "relay-max-bytes", EnvVars: envs("relay-max-bytes"),
			Usage: "end a relay session after this many `BYTES`, both directions together (0: unlimited)"},
		&cli.DurationFlag{Name: "relay-idle-timeout", Value: rendezvous.DefaultRelayIdleTimeout, EnvVars: envs("relay-idle-timeout"),
			Usage: "end a relay session when nothing crossed it for this long (tcpunch peers send a keepalive frame after 30 s of silence, so an idle but live session stays)"},
		&cli.DurationFlag{Name: "relay-max-duration", Value: rendezvous.DefaultRelayMaxDuration, EnvVars: envs("relay-max-duration"),
			Usage: "end a relay session this long after it started (0: unlimited)"},
	}
}

// RelayServeOptions turns the relay flags into server options. Peers are
// told why when a limit ends their session.
func RelayServeOptions(c *cli.Context) ([]rendezvous.ServerOption, error) {
	var on bool
	switch c.String("relay") {
	case "on", "true", "yes":
		on = true
	case "off", "false", "no":
	default:
		return nil, usageError("--relay %q: use on or off", c.String("relay"))
	}
	return []rendezvous.ServerOption{
		rendezvous.WithRelay(on),
		rendezvous.WithRelaySessions(c.Int("relay-sessions"), c.Int("relay-sessions-per-source")),
		rendezvous.WithRelayRate(c.Int64("relay-rate")),
		rendezvous.WithRelayMaxBytes(c.Int64("relay-max-bytes")),
		rendezvous.WithRelayIdleTimeout(c.Duration("relay-idle-timeout")),
		rendezvous.WithRelayMaxDuration(c.Duration("relay-max-duration")),
	}, nil
}
