package command

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
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
	ReadyFD     int           // --ready-fd: listen writes its local endpoint there once registered (package ready); 0 for none
	NoReport    bool          // don't send the rendezvous server the punch's outcome
	Relay       string        // auto, never or always ("" is auto)
	RelayBudget time.Duration // 0: the default
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer
	Logger      *slog.Logger
	Extra       []punch.Option // more engine options (e.g. punch.WithMaxPunches for listen)
	Trust       Trust          // --secret-file, TCPUNCH_SECRET, --insecure (secret.go)
}

func (p *Peer) check(name string) error {
	if p.Rendezvous == "" {
		return usageError("no rendezvous server: give --rendezvous HOST:PORT or set TCPUNCH_RENDEZVOUS")
	}
	if err := checkHostPort(p.Rendezvous); err != nil {
		return usageError("--rendezvous %q: %v", p.Rendezvous, err)
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
	if p.ReadyFD < 0 {
		return usageError("--ready-fd %d is not a file descriptor", p.ReadyFD)
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
	opts = append(opts, p.Extra...)
	if p.NoReport {
		opts = append(opts, punch.WithoutOutcomeReport())
	}
	if p.Port != 0 {
		opts = append(opts, punch.WithLocalAddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p.Port))))
	}
	return opts
}

// checkHostPort rejects a server address no retry could make work: no
// port, a port outside 1-65535, no host. A service name stands for its
// port, as net.Dial allows.
func checkHostPort(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	switch {
	case err != nil:
		return errors.New("want HOST:PORT ([ADDR]:PORT for IPv6)")
	case host == "":
		return errors.New("no host before the port")
	case port == "":
		return errors.New("no port after the host")
	}
	if n, err := strconv.Atoi(port); err == nil {
		if n < 1 || n > 65535 {
			return fmt.Errorf("port %d is not a TCP port (1-65535)", n)
		}
		return nil
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is neither a number nor a known service", port)
	}
	return nil
}
