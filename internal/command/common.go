package command

import (
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

// Peer holds what listen and dial share: where to meet and how to punch.
type Peer struct {
	Rendezvous  string        // HOST:PORT of the rendezvous server
	Port        int           // local port to reuse; 0 lets the kernel pick
	Timeout     time.Duration // for one punch, rendezvous included
	Verbose     bool
	Report      string        // "" or "json"
	Relay       string        // auto, never or always ("" is auto)
	RelayBudget time.Duration // 0: the default
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
	Logger      *slog.Logger
}

func (p *Peer) check(name string) error {
	if p.Rendezvous == "" {
		return usageError("no rendezvous server: give --rendezvous HOST:PORT or set TCPUNCH_RENDEZVOUS")
	}
	if name == "" {
		return usageError("missing NAME: the name the listener registers and the dialer asks for")
	}
	if p.Port < 0 || p.Port > 65535 {
		return usageError("--port %d is not a TCP port (0-65535; 0 picks one)", p.Port)
	}
	switch p.Report {
	case "", "json":
	default:
		return usageError("--report %q: the only format is json", p.Report)
	}
	if p.Timeout <= 0 {
		return usageError("--timeout must be positive")
	}
	if err := p.checkRelay(); err != nil {
		return err
	}
	return nil
}

func (p *Peer) options(prog *progress) []punch.Option {
	opts := []punch.Option{punch.WithEvents(prog.event), punch.WithPunchTimeout(p.Timeout)}
	if p.Logger != nil {
		opts = append(opts, punch.WithLogger(p.Logger))
	}
	opts = append(opts, p.relayOptions()...)
	if p.Port != 0 {
		opts = append(opts, punch.WithLocalAddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p.Port))))
	}
	return opts
}
