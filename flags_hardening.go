package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/internal/command"
	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// The flags that bound what untrusted peers can make a server or a
// listener do (rate limits, the punch cap), and their parsing.

func rateDefault(perSec float64, burst int) string {
	return strconv.FormatFloat(perSec, 'f', -1, 64) + ":" + strconv.Itoa(burst)
}

func serveLimitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "register-rate", Value: rateDefault(rendezvous.DefaultRegisterRate, rendezvous.DefaultRegisterBurst), EnvVars: envs("register-rate"),
			Usage: "Register requests per second from one source, and the burst (`RATE:BURST`; 0 = no limit); over it: 429"},
		&cli.StringFlag{Name: "connect-rate", Value: rateDefault(rendezvous.DefaultConnectRate, rendezvous.DefaultConnectBurst), EnvVars: envs("connect-rate"),
			Usage: "Connect requests per second from one source (`RATE:BURST`; 0 = no limit); over it: 429"},
		&cli.StringFlag{Name: "unknown-name-rate", Value: rateDefault(rendezvous.DefaultUnknownNameRate, rendezvous.DefaultUnknownNameBurst), EnvVars: envs("unknown-name-rate"),
			Usage: "404 answers (names nobody holds) per second to one source (`RATE:BURST`; 0 = no limit); over it: 429"},
		&cli.StringFlag{Name: "name-connect-rate", Value: rateDefault(rendezvous.DefaultNameConnectRate, rendezvous.DefaultNameConnectBurst), EnvVars: envs("name-connect-rate"),
			Usage: "Connects per second to one name, all sources together (`RATE:BURST`; 0 = no limit); over it: 429"},
		&cli.StringFlag{Name: "source-prefix", Value: fmt.Sprintf("%d,%d", rendezvous.DefaultIPv4PrefixBits, rendezvous.DefaultIPv6PrefixBits), EnvVars: envs("source-prefix"),
			Usage: "what one source is, for the rate limits and --max-conns-per-ip: IPv4 and IPv6 prefix lengths (`V4,V6`)"},
	}
}

func serveLimitOptions(c *cli.Context) ([]rendezvous.ServerOption, error) {
	var opts []rendezvous.ServerOption
	for _, f := range []struct {
		name string
		opt  func(float64, int) rendezvous.ServerOption
	}{
		{"register-rate", rendezvous.WithRegisterRate},
		{"connect-rate", rendezvous.WithConnectRate},
		{"unknown-name-rate", rendezvous.WithUnknownNameRate},
		{"name-connect-rate", rendezvous.WithNameConnectRate},
	} {
		r, b, err := parseRate(c.String(f.name))
		if err != nil {
			return nil, &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--%s: %w", f.name, err)}
		}
		opts = append(opts, f.opt(r, b))
	}
	v4, v6, ok := strings.Cut(c.String("source-prefix"), ",")
	b4, err4 := strconv.Atoi(strings.TrimSpace(v4))
	b6, err6 := strconv.Atoi(strings.TrimSpace(v6))
	if !ok || err4 != nil || err6 != nil || b4 < 0 || b4 > 32 || b6 < 0 || b6 > 128 {
		return nil, &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--source-prefix %q: want V4,V6 prefix lengths (0-32, 0-128), e.g. 32,64", c.String("source-prefix"))}
	}
	return append(opts, rendezvous.WithSourcePrefix(b4, b6)), nil
}

// parseRate reads RATE or RATE:BURST (RATE per second; "0" lifts the
// limit; the burst defaults to the rate, at least 1).
func parseRate(s string) (float64, int, error) {
	rs, bs, hasBurst := strings.Cut(strings.TrimSuffix(strings.TrimSpace(s), "/s"), ":")
	r, err := strconv.ParseFloat(strings.TrimSuffix(rs, "/s"), 64)
	if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, 0, fmt.Errorf("%q: want RATE:BURST, e.g. 10:20 (0 = no limit)", s)
	}
	burst := max(int(r), 1)
	if hasBurst {
		if burst, err = strconv.Atoi(bs); err != nil || burst < 1 {
			return 0, 0, fmt.Errorf("%q: the burst must be a whole number of at least 1", s)
		}
	}
	return r, burst, nil
}

func maxPunchesFlag() cli.Flag {
	return &cli.IntFlag{Name: "max-punches", Value: 8, EnvVars: envs("max-punches"),
		Usage: "punches run at once for different dialers; more dialers are refused at once (they see 'listener busy')"}
}

func maxPunchesOption(c *cli.Context) ([]punch.Option, error) {
	if n := c.Int("max-punches"); n < 1 {
		return nil, &command.Error{Code: command.ExitUsage, Err: fmt.Errorf("--max-punches %d: must be at least 1", n)}
	}
	return []punch.Option{punch.WithMaxPunches(c.Int("max-punches"))}, nil
}
