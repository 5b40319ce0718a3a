//go:build !linux

package bench

import (
	"context"
	"errors"
	"runtime"

	"github.com/urfave/cli/v2"
)

var errLinuxOnly = errors.New("bench: the benchmarks need Linux (network namespaces, /proc, 127.0.0.0/8 sources); this is " + runtime.GOOS)

var suite = map[string]func(context.Context, Config) error{}

func init() {
	for _, n := range Names {
		suite[n] = func(context.Context, Config) error { return errLinuxOnly }
	}
}

func machine() string { return runtime.GOOS + "/" + runtime.GOARCH + "\n" }

func peerCommand() *cli.Command {
	return &cli.Command{Name: "peer", Hidden: true, Action: func(*cli.Context) error { return errLinuxOnly }}
}

func serveCommand() *cli.Command {
	return &cli.Command{Name: "serve", Hidden: true, Action: func(*cli.Context) error { return errLinuxOnly }}
}

func natCheckPeerCommand() *cli.Command {
	return &cli.Command{Name: "natcheck-peer", Hidden: true, Action: func(*cli.Context) error { return errLinuxOnly }}
}
