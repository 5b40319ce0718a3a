package bench

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/internal/command"
	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// serveCommand is `tcpunch bench serve`: the same server as `tcpunch
// serve`, same logging, under the CPU profiler.
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:   "serve",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cpuprofile", Required: true},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0"},
			&cli.IntFlag{Name: "max-conns", Value: rendezvous.DefaultMaxConns},
			&cli.IntFlag{Name: "max-conns-per-ip", Value: rendezvous.DefaultMaxConnsPerIP},
			&cli.IntFlag{Name: "ready-fd", EnvVars: []string{ready.EnvVar}},
		},
		Action: func(c *cli.Context) error {
			f, err := os.Create(c.String("cpuprofile"))
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			err = command.Serve(c.Context, command.ServeConfig{Listen: c.String("listen"), Logger: logger, DrainGrace: time.Second, ReadyFD: c.Int("ready-fd")},
				rendezvous.WithMaxConns(c.Int("max-conns")), rendezvous.WithMaxConnsPerIP(c.Int("max-conns-per-ip")))
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
}
