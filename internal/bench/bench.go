package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Config is what `tcpunch bench` takes.
type Config struct {
	Exe      string          // the tcpunch binary the benchmarks run
	Only     map[string]bool // benchmarks to run; empty: all
	Runs     int             // time to connect: runs per cell
	Delays   []time.Duration // time to connect: one-way delays between the peers
	Idle     []int           // idle listeners: counts
	Duration time.Duration   // length of one timed run (pairing, STUN, data)
	Rounds   int             // A/B alternations for ratios
	Conns    int             // STUN: connections of the load generator
	Burst    int             // accept burst: connections opened at once
	Profile  string          // directory for CPU profiles of the servers; "" none
	Out      io.Writer       // the results, as markdown
	Log      io.Writer       // progress
}

// Names of the benchmarks, in the order they run.
var Names = []string{"connect", "natcheck", "idle", "pairing", "burst", "stun", "data", "secure"}

// Command is the hidden `tcpunch bench` command.
func Command() *cli.Command {
	return &cli.Command{
		Name:   "bench",
		Hidden: true,
		Usage:  "run the benchmark suite (see BENCHMARKS.md); Linux, root for the lab",
		Description: `Runs the benchmarks and prints their results as markdown tables on stdout,
progress on stderr. Every benchmark is bounded and stops by itself; traffic
goes only to loopback and to the lab's network namespaces.

   tcpunch bench                         # everything (about 10 minutes)
   tcpunch bench --quick                 # fewer runs, shorter runs (about 3 minutes)
   tcpunch bench --only stun,pairing --profile /tmp/prof
`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "only", Usage: "comma-separated subset of " + strings.Join(Names, ",")},
			&cli.IntFlag{Name: "runs", Value: 20, Usage: "time to connect: runs per scenario and delay"},
			&cli.StringFlag{Name: "delays", Value: "0,10,25,50,100", Usage: "time to connect: one-way delays between the peers, in ms"},
			&cli.StringFlag{Name: "idle", Value: "10000,50000", Usage: "idle listeners: how many to register"},
			&cli.DurationFlag{Name: "duration", Value: 4 * time.Second, Usage: "length of one timed run"},
			&cli.IntFlag{Name: "rounds", Value: 3, Usage: "A/B alternations; ratios are medians over them"},
			&cli.IntFlag{Name: "conns", Value: 32, Usage: "STUN: connections of the load generator"},
			&cli.IntFlag{Name: "burst", Value: 10000, Usage: "accept burst: connections opened at once"},
			&cli.BoolFlag{Name: "quick", Usage: "5 runs per cell, delays 0,25,100, 10k idle, 2 s runs, 2 rounds"},
			&cli.StringFlag{Name: "profile", Usage: "write CPU profiles of the servers under load to `DIR`"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := configFrom(c)
			if err != nil {
				return err
			}
			return Run(c.Context, cfg)
		},
		Subcommands: []*cli.Command{peerCommand(), natCheckPeerCommand(), serveCommand()},
	}
}

func configFrom(c *cli.Context) (Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Exe: exe, Only: map[string]bool{}, Runs: c.Int("runs"), Duration: c.Duration("duration"),
		Rounds: c.Int("rounds"), Conns: c.Int("conns"), Burst: c.Int("burst"), Profile: c.String("profile"),
		Out: os.Stdout, Log: os.Stderr,
	}
	delays, idle := c.String("delays"), c.String("idle")
	if c.Bool("quick") {
		if !c.IsSet("runs") {
			cfg.Runs = 5
		}
		if !c.IsSet("delays") {
			delays = "0,25,100"
		}
		if !c.IsSet("idle") {
			idle = "10000"
		}
		if !c.IsSet("duration") {
			cfg.Duration = 2 * time.Second
		}
		if !c.IsSet("rounds") {
			cfg.Rounds = 2
		}
	}
	for _, s := range splitList(delays) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return cfg, fmt.Errorf("--delays: %q is not a number of milliseconds", s)
		}
		cfg.Delays = append(cfg.Delays, time.Duration(n)*time.Millisecond)
	}
	for _, s := range splitList(idle) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("--idle: %q is not a count", s)
		}
		cfg.Idle = append(cfg.Idle, n)
	}
	for _, s := range splitList(c.String("only")) {
		known := false
		for _, n := range Names {
			known = known || n == s
		}
		if !known {
			return cfg, fmt.Errorf("--only: unknown benchmark %q (have %s)", s, strings.Join(Names, ","))
		}
		cfg.Only[s] = true
	}
	if cfg.Runs < 1 || cfg.Rounds < 1 || cfg.Conns < 1 || cfg.Burst < 1 || cfg.Duration <= 0 {
		return cfg, errors.New("--runs, --rounds, --conns, --burst and --duration must be positive")
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Run runs the selected benchmarks in order. A benchmark that fails is
// reported and the others still run; the error lists the failures.
func Run(ctx context.Context, cfg Config) error {
	fmt.Fprintf(cfg.Out, "# tcpunch benchmarks, %s\n\n%s\n", time.Now().UTC().Format(time.RFC3339), machine())
	var failed []string
	for _, name := range Names {
		if len(cfg.Only) > 0 && !cfg.Only[name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		cfg.logf("== %s", name)
		if err := suite[name](ctx, cfg); err != nil {
			cfg.logf("%s failed: %v", name, err)
			fmt.Fprintf(cfg.Out, "\n**%s failed**: %v\n", name, err)
			failed = append(failed, name)
		}
		cfg.logf("== %s done in %v", name, time.Since(start).Round(time.Millisecond))
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench: failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func (cfg Config) logf(format string, args ...any) {
	fmt.Fprintf(cfg.Log, "bench: "+format+"\n", args...)
}
