// Command tcpunch connects two machines that both sit behind NATs with one
// direct TCP connection (TCP hole punching through a rendezvous server), and
// pipes it like nc, forwards it like ssh -L, or hands it to a program.
//
// This file only declares the commands and flags; what they do lives in
// internal/command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/internal/bench"
	"github.com/tcpunch/tcpunch/internal/command"
	"github.com/tcpunch/tcpunch/internal/ingress"
	"github.com/tcpunch/tcpunch/internal/relay"
	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

const exitCodesHelp = `EXIT CODES:
   0    success; for serve, listen --forward/--exec and dial --local: stopped by SIGINT/SIGTERM
   1    failure (I/O, a local --port another program holds, a --exec child that failed, ...)
   2    usage: bad flags or arguments, an unknown command, a malformed --rendezvous
   3    no path: the punch timed out (relaying off, refused or impossible), the NAT classes rule
        a direct path out and relaying is off, or the peer refused verification
   4    rendezvous: server unreachable (after retrying for --timeout), unknown name, name taken,
        listener busy, or a --port that already has a connection to that server
   5    incomplete: the peer reset, died or cut the stream, or the relay server ended it (a
        limit, its death); the line says how many bytes were sent and acknowledged, or the
        relay's reason (exit 0 means everything sent was read by the peer)
   6    authentication failed: the peer holds another secret or code (nothing was sent or
        received), or a one-time code was retired after 3 failed attempts
   130  interrupted (SIGINT/SIGTERM) while punching or piping

Flags go before or after NAME; after -- everything is NAME.
`

func main() {
	// Children started by --exec must inherit the connection and nothing else.
	if err := relay.CloseInheritedOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "tcpunch: preparing descriptors: %v\n", err)
		os.Exit(command.ExitFailure)
	}
	command.IgnoreSIGPIPE()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	app := newApp()
	err := app.RunContext(ctx, permuteArgs(app, os.Args))
	var ce *command.Error
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.As(err, &ce):
		fmt.Fprintln(os.Stderr, "tcpunch: interrupted")
	default:
		fmt.Fprintf(os.Stderr, "tcpunch: %v\n", err)
	}
	stop()
	os.Exit(command.ExitCode(err))
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "tcpunch",
		Usage: "direct TCP between two machines behind NATs (TCP hole punching)",
		Description: `Two peers meet at a rendezvous server, learn each other's public endpoint,
and connect directly by TCP simultaneous open from a reused local port.

   tcpunch serve                                   # on a public host: the rendezvous server
   tcpunch listen -r rv.example:3478               # behind NAT: prints a one-time code, waits for it
   tcpunch dial   -r rv.example:3478 7-amber-orbit-lamp    # behind another NAT: connect, pipe stdin/stdout
   tcpunch secret > ~/.tcpunch-secret              # long-lived trust: copy the file to both machines
   tcpunch listen -r rv.example:3478 --secret-file ~/.tcpunch-secret laptop
   tcpunch dial   -r rv.example:3478 --secret-file ~/.tcpunch-secret laptop
   tcpunch demo                                    # see it work, on this machine alone

Secure by default: the link is TLS 1.3, mutually authenticated by the secret
or the code; the rendezvous server cannot read it, take it over, or even
learn NAME. --insecure sends plaintext to whoever knows NAME, with a warning.

` + exitCodesHelp,
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Action:          unknownCommand,
		ExitErrHandler:  func(*cli.Context, error) {}, // main prints and exits
		Commands: []*cli.Command{
			serveCommand(),
			listenCommand(),
			dialCommand(),
			stunCommand(),
			secretCommand(),
			netcheckCommand(),
			demoCommand(),
			bench.Command(), // hidden: the benchmark suite (BENCHMARKS.md)
		},
	}
}

// unknownCommand runs when no subcommand matched: help without arguments,
// exit 2 for a name that is no subcommand.
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	return &command.Error{Code: command.ExitUsage,
		Err: fmt.Errorf("unknown command %q (see tcpunch --help)", c.Args().First())}
}

// permuteArgs lets flags follow a subcommand's operands, as in
// `tcpunch dial laptop -r rv:3478` (see command.PermuteArgs). urfave/cli
// v2 would stop parsing at the first operand.
func permuteArgs(app *cli.App, args []string) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // tcpunch itself has no flag with a value (only --help)
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args // bench has its own subcommands and parses for itself
	}
	kinds := command.FlagKinds{"help": false, "h": false}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			kinds[name] = !isBool
		}
	}
	rest := command.PermuteArgs(args[i+1:], kinds)
	if j := slices.Index(rest, "--"); j >= 0 && (slices.Contains(rest[:j], "--help") || slices.Contains(rest[:j], "-h")) {
		rest = rest[:j] // urfave/cli would read an operand as a help topic
	}
	return append(append([]string{}, args[:i+1]...), rest...)
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return &command.Error{Code: command.ExitUsage, Err: err}
}

// envs is the one naming rule for environment variables: TCPUNCH_ and the
// flag's long name in upper case with dashes as underscores.
func envs(name string) []string {
	b := []byte("TCPUNCH_" + name)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return []string{string(b)}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, EnvVars: envs("verbose"),
		Usage: "show every attempt with timestamps, and debug logs"}
}

func logFormatFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-format", Value: "text", EnvVars: envs("log-format"),
		Usage: "log format on stderr: text or json"}
}

func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--log-format %q: use text or json", c.String("log-format"))}
}

// peerFlags are the flags listen and dial share.
func peerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rendezvous", Aliases: []string{"r"}, EnvVars: envs("rendezvous"),
			Usage: "rendezvous server `HOST:PORT`"},
		&cli.IntFlag{Name: "port", Aliases: []string{"p"}, EnvVars: envs("port"),
			Usage: "local `PORT` to listen and dial from (0 picks one)"},
		&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 15 * time.Second, EnvVars: envs("timeout"),
			Usage: "give up a punch, or reaching the rendezvous server, after this long"},
		&cli.StringFlag{Name: "secret-file", Aliases: []string{"s"}, EnvVars: envs("secret-file"),
			Usage: "read the shared secret from `FILE` (make one with tcpunch secret; TCPUNCH_SECRET may hold the secret itself)"},
		&cli.BoolFlag{Name: "insecure", EnvVars: envs("insecure"),
			Usage: "no secret, no code: plaintext to whoever knows NAME, readable and changeable by the server and the path"},
		&cli.StringFlag{Name: "report", EnvVars: envs("report"),
			Usage: "`json`: one JSON line per connection on stderr (local, remote, method, path, elapsed_ms, attempts, attempts_per_candidate, self_connects, auth, handshake_ms); a relayed stream that moves to direct adds a second (path, upgraded_from, upgraded_after_ms, remote, round, stall_ms, read_stall_ms, write_stall_ms)"},
		&cli.BoolFlag{Name: "no-report", EnvVars: envs("no-report"),
			Usage: "don't tell the rendezvous server how each punch went (by default: direct, relay or failed, method, time, attempts; no address), which it counts for its operator's success rate"},
		&cli.StringFlag{Name: "relay", Value: "auto", EnvVars: envs("relay"),
			Usage: "`MODE`: auto relays through the rendezvous server when no direct connection verified within --relay-budget, and moves the live stream to a direct connection if one verifies later; never; always (relays at once, never moves)"},
		&cli.DurationFlag{Name: "relay-budget", Value: punch.DefaultRelayBudget, EnvVars: envs("relay-budget"),
			Usage: "with --relay auto: how long to wait for a direct connection before relaying (direct attempts go on)"},
		verboseFlag(),
	}
}

// readyFDFlag is --ready-fd, the readiness handshake of package ready.
func readyFDFlag(usage string) cli.Flag {
	return &cli.IntFlag{Name: "ready-fd", EnvVars: envs("ready-fd"), Usage: usage}
}

// checkServeFlags rejects limits the server could only ignore or clamp:
// a nonsense value is a usage error, not a silent default.
func checkServeFlags(c *cli.Context) error {
	for _, name := range []string{"drain-grace", "read-timeout", "idle-timeout", "keepalive", "write-timeout", "ping-timeout"} {
		if c.Duration(name) <= 0 {
			return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--%s %v: must be positive", name, c.Duration(name))}
		}
	}
	if n := c.Int("max-message-size"); n < 20 || n > 20+0xFFFF {
		return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--max-message-size %d: a STUN message is 20 to 65555 bytes", n)}
	}
	if n := c.Int("max-name-length"); n < 1 || n > 255 {
		return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--max-name-length %d: 1 to 255 bytes", n)}
	}
	if n := c.Int("max-candidates"); n < 0 {
		return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--max-candidates %d: must be 0 or more", n)}
	}
	if n := c.Int("ready-fd"); n < 0 {
		return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--ready-fd %d is not a file descriptor", n)}
	}
	return nil
}

func peerConfig(c *cli.Context) command.Peer {
	// The progress lines are the human account; the library adds what they
	// do not cover (a lost rendezvous, a re-registration), and with -v its
	// debug detail.
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	logger := command.NewLineLogger(os.Stderr, level)
	return command.Peer{
		Rendezvous:  c.String("rendezvous"),
		Port:        c.Int("port"),
		Timeout:     c.Duration("timeout"),
		Verbose:     c.Bool("verbose"),
		Report:      c.String("report"),
		ReadyFD:     c.Int("ready-fd"),
		NoReport:    c.Bool("no-report"),
		Relay:       c.String("relay"),
		RelayBudget: c.Duration("relay-budget"),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Logger:      logger,
		Trust: command.Trust{
			SecretFile: c.String("secret-file"),
			Secret:     os.Getenv("TCPUNCH_SECRET"),
			Insecure:   c.Bool("insecure"),
		},
	}
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", &command.Error{Code: command.ExitUsage,
			Err: fmt.Errorf("%s takes exactly one %s (see tcpunch %s --help)", c.Command.Name, what, c.Command.Name)}
	}
	return c.Args().First(), nil
}

func listenCommand() *cli.Command {
	return &cli.Command{
		Name:      "listen",
		Usage:     "wait for a peer: with a one-time code, or as NAME with a secret",
		ArgsUsage: "[NAME]",
		Description: `Without NAME and without a secret: prints a one-time code (such as
7-amber-orbit-lamp) and the tcpunch dial line to run on the other side, and
accepts that one connection. The server sees only the nameplate (c-7); the
words are the password of a PAKE (CPace) between the two peers. 3 failed
attempts retire the code (exit 6).

With a secret (--secret-file or TCPUNCH_SECRET): registers NAME, a label that
only holders of the secret can register or dial (the server sees a name
derived from both), and waits for peers to dial it.

--insecure registers NAME as is, in plaintext, for whoever knows it.

Every link is TLS 1.3 authenticated by the secret or the code. A peer with a
wrong secret or code is refused before any byte is delivered; the listener
goes on serving. By default the first connection is piped to stdin/stdout,
like nc -l; exit 0 means everything both ways arrived (see EXIT CODES).

EXAMPLES:
   tcpunch listen -r rv.example:3478 > received.tar                # prints a code
   tcpunch listen -r rv.example:3478 -s ~/.tcpunch-secret --forward localhost:22 laptop   # expose sshd
   tcpunch listen -r rv.example:3478 -s ~/.tcpunch-secret --exec 'bash -i' laptop      # a shell per connection
`,
		Flags: append(peerFlags(),
			&cli.StringFlag{Name: "forward", EnvVars: envs("forward"),
				Usage: "proxy every connection to the local service at `HOST:PORT`"},
			&cli.StringFlag{Name: "exec", EnvVars: envs("exec"),
				Usage: "run `CMD` (via /bin/sh -c) for every connection, as its stdin/stdout"},
			readyFDFlag("once registered, write the local endpoint (with a one-time code: a space and the code) and a newline to descriptor `N`, and close it"),
			maxPunchesFlag(), // flags_hardening.go
		),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("listen takes at most one NAME (see tcpunch listen --help)")}
			}
			name := c.Args().First()
			peer := peerConfig(c)
			var err error
			if peer.Extra, err = maxPunchesOption(c); err != nil { // flags_hardening.go
				return err
			}
			return command.Listen(c.Context, peer, name,
				command.ListenMode{Forward: c.String("forward"), Exec: c.String("exec")})
		},
	}
}

func dialCommand() *cli.Command {
	return &cli.Command{
		Name:      "dial",
		Usage:     "punch a direct connection to the listener of CODE, or of NAME with a secret",
		ArgsUsage: "CODE | NAME",
		Description: `Asks the rendezvous server for the listener and punches a direct,
encrypted connection to it. CODE is the one-time code tcpunch listen printed
(recognized by its shape, 7-amber-orbit-lamp); NAME needs the listener's
secret (--secret-file or TCPUNCH_SECRET), or --insecure for plaintext.
A wrong code or secret is refused before any byte is sent (exit 6; with a
secret, the server cannot even find the name: exit 4).
By default the connection is piped to stdin/stdout, like nc; exit 0 means
everything both ways arrived (see EXIT CODES).

EXAMPLES:
   tcpunch dial -r rv.example:3478 7-amber-orbit-lamp < backup.tar       # send a file
   tcpunch dial -r rv.example:3478 -s ~/.tcpunch-secret --local 127.0.0.1:2222 laptop &
   ssh -p 2222 user@127.0.0.1                                      # ssh through the punched path
   ssh -o ProxyCommand='tcpunch dial -r rv.example:3478 -s ~/.tcpunch-secret laptop' user@laptop
`,
		Flags: append(peerFlags(),
			&cli.StringFlag{Name: "local", EnvVars: envs("local"),
				Usage: "listen on `ADDR` and punch a new connection for every local client"},
			&cli.StringFlag{Name: "exec", EnvVars: envs("exec"),
				Usage: "run `CMD` (via /bin/sh -c) with the connection as its stdin/stdout"},
			readyFDFlag("with --local, once listening, write the local address and a newline to descriptor `N`, and close it"),
		),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "CODE or NAME")
			if err != nil {
				return err
			}
			return command.Dial(c.Context, peerConfig(c), name,
				command.DialMode{Local: c.String("local"), Exec: c.String("exec")})
		},
	}
}

func secretCommand() *cli.Command {
	return &cli.Command{
		Name:  "secret",
		Usage: "print a new random secret for listen and dial --secret-file (or TCPUNCH_SECRET)",
		Description: `Prints a new secret (256 random bits, "tps1-" and base32 with a checksum).
Give the same secret to both sides; NAME stays a label, so several listeners
can share one secret. Keep it like an ssh private key: whoever holds it can
listen as and dial your names.

EXAMPLES:
   (umask 077; tcpunch secret > ~/.tcpunch-secret)
`,
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("secret takes no arguments")}
			}
			return command.Secret(os.Stdout)
		},
	}
}

func stunCommand() *cli.Command {
	return &cli.Command{
		Name:      "stun",
		Usage:     "print the public mapping of a local port as STUN-over-TCP servers see it",
		ArgsUsage: "SERVER [SERVER...]",
		Description: `Sends a STUN Binding request over TCP from one local port to each SERVER
(a tcpunch rendezvous server, or any STUN server that speaks TCP, such as coturn)
and prints the mapped public address. With two servers it tells whether the
NAT maps the port the same way for every destination (punchable) or not
(symmetric NAT).

EXAMPLES:
   tcpunch stun rv.example:3478
   tcpunch stun --port 5000 rv.example:3478 stun2.example:3478
`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, EnvVars: envs("port"),
				Usage: "local `PORT` to ask about (0 picks one)"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 5 * time.Second, EnvVars: envs("timeout"),
				Usage: "per server"},
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			return command.Stun(c.Context, c.Args().Slice(), c.Int("port"), c.Duration("timeout"), os.Stdout, os.Stderr)
		},
	}
}

func netcheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "netcheck",
		Usage:     "tell how the NAT here treats TCP, and whether direct punching can work",
		ArgsUsage: "[SERVER]",
		Description: `Asks a tcpunch server (SERVER, else --rendezvous or TCPUNCH_RENDEZVOUS), from one
reused local port, over IPv4 and IPv6 (both when SERVER is a host name):
   mapping         endpoint-independent / address-dependent / address-and-port-dependent,
                   from Bindings to the server's two addresses and ports (port deltas shown)
   port preserved  whether the NAT kept the local port
   filtering       accepted / rst / silent: the server dials back from its second address
   hairpin         whether a connection to our own public endpoint comes back
   rtt             to the server
Every answer is a value or "not measured" with why: a server without --alt-addr
cannot measure the filtering or the mapping. The last line is advice.

EXAMPLES:
   tcpunch netcheck rv.example:3478
   tcpunch netcheck --json -r rv.example:3478
`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rendezvous", Aliases: []string{"r"}, EnvVars: envs("rendezvous"),
				Usage: "the tcpunch server `HOST:PORT` (the argument wins)"},
			&cli.BoolFlag{Name: "json", EnvVars: envs("json"), Usage: "print the report as JSON"},
			&cli.DurationFlag{Name: "timeout", Aliases: []string{"t"}, Value: 3 * time.Second, EnvVars: envs("timeout"),
				Usage: "per step (connecting, one request, waiting for a dial-back)"},
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("netcheck takes at most one SERVER (see tcpunch netcheck --help)")}
			}
			server := c.String("rendezvous")
			if c.NArg() == 1 {
				server = c.Args().First()
			}
			return command.Netcheck(c.Context, server, c.Bool("json"), c.Duration("timeout"), os.Stdout)
		},
	}
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "show a punch end to end on this machine, through a real two-NAT lab when root",
		Description: `Starts a rendezvous server and two peers, punches, sends data both ways and
prints a timeline. As root (nothing to install), the peers sit behind two real
Linux NATs in network namespaces; otherwise the demo runs on loopback and says
so. The peers share a fresh secret and run with --relay never, so a scenario
with no direct path ends with exit 3 and says why.

The lab has the scenarios of the e2e tests: drop×drop (the default), rst×rst,
symmetric×drop (no direct path: see how tcpunch says so), double×drop,
drop×drop-lossy, … ("x" for "×" is fine; an unknown name lists them all).

EXAMPLES:
   sudo tcpunch demo
   sudo tcpunch demo --scenario rstxrst --delay 25ms
   tcpunch demo --loopback
`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "loopback", EnvVars: envs("loopback"), Usage: "skip the NAT lab even as root"},
			&cli.StringFlag{Name: "scenario", EnvVars: envs("scenario"), Usage: "lab `SCENARIO` (default drop×drop)"},
			&cli.DurationFlag{Name: "delay", EnvVars: envs("delay"), Usage: "one-way WAN delay in the lab (e.g. 25ms)"},
			verboseFlag(),
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			return command.Demo(c.Context, command.DemoConfig{
				Loopback: c.Bool("loopback"),
				Scenario: c.String("scenario"),
				Delay:    c.Duration("delay"),
				Verbose:  c.Bool("verbose"),
				Stdout:   os.Stdout,
			})
		},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the rendezvous server (also a STUN server over TCP)",
		Description: `Runs the rendezvous server: peers register names, dialers ask for them, and
the server swaps their public endpoints and starts both at the same moment.
It answers STUN Binding requests over TCP too. No configuration file is needed;
every flag is also an environment variable (TCPUNCH_ and the flag's name, for
systemd's EnvironmentFile).

SIGINT/SIGTERM drain: /readyz turns 503 at once (and systemd is told
STOPPING=1), after --drain-delay the server stops accepting, tells every peer
(Goodbye 503) and exits within --drain-grace. Under systemd (Type=notify) it
sends READY=1 once it listens.

EXAMPLES:
   tcpunch serve
   tcpunch serve --listen [::]:3478 --log-format json --admin 127.0.0.1:9478
   tcpunch serve --proxy-protocol-from 10.0.0.0/24   # behind HAProxy with send-proxy-v2
   tcpunch serve --alt-addr 198.51.100.7 --alt-addr 2001:db8::7   # NAT checks (tcpunch netcheck)
`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Value: ":3478", EnvVars: envs("listen"),
				Usage: "`ADDR` to listen on"},
			&cli.StringFlag{Name: "admin", EnvVars: envs("admin"),
				Usage: "serve /metrics, /livez and /readyz on `ADDR` (off by default; localhost or a private network: no authentication)"},
			&cli.DurationFlag{Name: "drain-delay", EnvVars: envs("drain-delay"),
				Usage: "after SIGTERM, keep serving this long with /readyz at 503 (so a load balancer stops sending peers), then stop accepting"},
			&cli.DurationFlag{Name: "drain-grace", Aliases: []string{"grace"}, Value: 30 * time.Second, EnvVars: append(envs("drain-grace"), envs("grace")...),
				Usage: "how long the shutdown after the drain delay may take (peers told, connections and relayed sessions ended)"},
			&cli.StringSliceFlag{Name: "proxy-protocol-from", EnvVars: envs("proxy-protocol-from"),
				Usage: "`CIDRS` (comma-separated) of load balancers that must send a PROXY protocol (v2 or v1) header; a header from any other source is refused. Off by default"},
			&cli.DurationFlag{Name: "proxy-header-timeout", Value: ingress.DefaultHeaderTimeout, EnvVars: envs("proxy-header-timeout"),
				Usage: "time a connection has to send its PROXY header (and other sources their first bytes)"},
			&cli.IntFlag{Name: "max-conns", Value: rendezvous.DefaultMaxConns, EnvVars: envs("max-conns"),
				Usage: "connections held at once, all clients together"},
			&cli.IntFlag{Name: "max-conns-per-ip", Value: rendezvous.DefaultMaxConnsPerIP, EnvVars: envs("max-conns-per-ip"),
				Usage: "connections held at once from one source address"},
			&cli.IntFlag{Name: "max-message-size", Value: rendezvous.DefaultMaxMessageSize, EnvVars: envs("max-message-size"),
				Usage: "largest STUN message accepted, in bytes"},
			&cli.IntFlag{Name: "max-name-length", Value: rendezvous.DefaultMaxNameLength, EnvVars: envs("max-name-length"),
				Usage: "longest name a listener may register, in bytes"},
			&cli.DurationFlag{Name: "read-timeout", Value: rendezvous.DefaultReadTimeout, EnvVars: envs("read-timeout"),
				Usage: "time allowed to finish one message once it has started (slow clients are cut)"},
			&cli.DurationFlag{Name: "idle-timeout", Value: rendezvous.DefaultIdleTimeout, EnvVars: envs("idle-timeout"),
				Usage: "a connection silent this long (no message, no ping answer) is closed and its name freed"},
			&cli.DurationFlag{Name: "keepalive", Value: rendezvous.DefaultKeepAlive, EnvVars: envs("keepalive"),
				Usage: "how often the server pings connected peers, listeners and dialers (keeps NAT mappings alive, finds dead peers)"},
			&cli.IntFlag{Name: "max-candidates", Value: rendezvous.DefaultMaxCandidates, EnvVars: envs("max-candidates"),
				Usage: "host (LAN) candidates a peer may send; 0 passes on only the endpoint the server observes"},
			&cli.DurationFlag{Name: "write-timeout", Value: rendezvous.DefaultWriteTimeout, EnvVars: envs("write-timeout"),
				Usage: "time allowed for one write to a client (a client that stops reading is cut)"},
			&cli.DurationFlag{Name: "ping-timeout", Value: rendezvous.DefaultPingTimeout, EnvVars: envs("ping-timeout"),
				Usage: "how long the server waits for a ping answer when it measures a round trip itself"},
			&cli.StringSliceFlag{Name: "alt-addr", EnvVars: envs("alt-addr"),
				Usage: "a second `IP[:PORT]` of this host, once per family: listen there too and dial clients back from it, so `tcpunch netcheck` can measure NAT mapping and filtering (PORT defaults to the --listen port + 1)"},
		}, append(append(command.RelayServeFlags(envs),
			readyFDFlag("once listening, write the listening address and a newline to descriptor `N`, and close it"),
			logFormatFlag(),
			verboseFlag(),
		), serveLimitFlags()...)...), // flags_hardening.go
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c, os.Stderr)
			if err != nil {
				return err
			}
			if err := checkServeFlags(c); err != nil {
				return err
			}
			relayOpts, err := command.RelayServeOptions(c)
			if err != nil {
				return err
			}
			limits, err := serveLimitOptions(c) // flags_hardening.go
			if err != nil {
				return err
			}
			alts, err := command.AltAddrs(c.StringSlice("alt-addr"), c.String("listen"))
			if err != nil {
				return err
			}
			err = command.Serve(c.Context, command.ServeConfig{
				Listen:             c.String("listen"),
				Admin:              c.String("admin"),
				DrainDelay:         c.Duration("drain-delay"),
				DrainGrace:         c.Duration("drain-grace"),
				ProxyFrom:          c.StringSlice("proxy-protocol-from"),
				ProxyHeaderTimeout: c.Duration("proxy-header-timeout"),
				Logger:             logger,
				ReadyFD:            c.Int("ready-fd"),
			}, append(append(append(limits, alts...), relayOpts...),
				rendezvous.WithMaxConns(c.Int("max-conns")),
				rendezvous.WithMaxConnsPerIP(c.Int("max-conns-per-ip")),
				rendezvous.WithMaxMessageSize(c.Int("max-message-size")),
				rendezvous.WithMaxNameLength(c.Int("max-name-length")),
				rendezvous.WithReadTimeout(c.Duration("read-timeout")),
				rendezvous.WithIdleTimeout(c.Duration("idle-timeout")),
				rendezvous.WithKeepAlive(c.Duration("keepalive")),
				rendezvous.WithMaxCandidates(c.Int("max-candidates")),
				rendezvous.WithWriteTimeout(c.Duration("write-timeout")),
				rendezvous.WithPingTimeout(c.Duration("ping-timeout")),
			)...)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
}
