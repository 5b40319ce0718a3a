package command

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

// Peer holds what listen and dial share: where to meet and how to punch.
type Peer struct {
	Rendezvous string        // HOST:PORT of the rendezvous server
	Port       int           // local port to reuse; 0 lets the kernel pick
	Timeout    time.Duration // for one punch, rendezvous included
	Verbose    bool
	Report     string // "" or "json"
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	Logger     *slog.Logger
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
	return nil
}

func (p *Peer) options(prog *progress) []punch.Option {
	opts := []punch.Option{punch.WithEvents(prog.event), punch.WithPunchTimeout(p.Timeout)}
	if p.Logger != nil {
		opts = append(opts, punch.WithLogger(p.Logger))
	}
	if p.Port != 0 {
		opts = append(opts, punch.WithLocalAddr(netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p.Port))))
	}
	return opts
}

// explain turns a punch failure into the one line the user reads: what
// was tried, how it ended, and what to try next. The full error stays
// wrapped for errors.Is.
func explain(name string, timeout time.Duration, peer *punch.Event, err error) error {
	var pe *punch.Error
	if errors.Is(err, punch.ErrOnlySelfConnects) {
		return &oneLine{err: err, msg: fmt.Sprintf("no direct path to %q: every candidate was our own address and port "+
			"(self-connect: two tcpunch processes on one host given the same --port?); give them different ports", name)}
	}
	if !errors.Is(err, punch.ErrTimeout) || !errors.As(err, &pe) {
		return err
	}
	msg := fmt.Sprintf("no direct path to %q after %v", name, timeout)
	if tried := summarize(pe); tried != "" {
		msg += ": " + tried
	}
	msg += "; " + natHint(peer)
	return &oneLine{msg: msg, err: err}
}

// natHint guesses which NAT is in the way. A NAT that kept the local port
// (as Linux masquerade and most home routers do when they can) is likely
// endpoint-independent; one that changed it may be symmetric.
func natHint(peer *punch.Event) string {
	const generic = "one of the NATs may be symmetric (`tcpunch stun SERVER1 SERVER2` on each side tells)"
	if peer == nil || len(peer.Candidates) == 0 {
		return generic
	}
	var hints []string
	observed := peer.Candidates[0]
	for _, host := range peer.Candidates[1:] {
		if host.Addr() != observed.Addr() && host.Port() != observed.Port() {
			hints = append(hints, fmt.Sprintf("peer %v looks like a symmetric NAT (it mapped local port %d to %d)",
				observed.Addr(), host.Port(), observed.Port()))
			break
		}
	}
	if o, l := peer.Observed, peer.Local; o.IsValid() && l.IsValid() && o.Port() != l.Port() {
		hints = append(hints, fmt.Sprintf("our NAT %v looks symmetric (it mapped local port %d to %d)", o.Addr(), l.Port(), o.Port()))
	}
	if len(hints) == 0 {
		return generic
	}
	return strings.Join(hints, "; ")
}

// summarize says, per candidate, how many attempts ended how.
func summarize(pe *punch.Error) string {
	var parts []string
	for _, c := range pe.Candidates {
		part := fmt.Sprintf("%d attempts to %v", c.Attempts, c.Addr)
		if c.Err != nil {
			part += " (last: " + rootCause(c.Err) + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// rootCause is the innermost, most specific part of an error: "connection
// refused" rather than the whole chain of what was being done.
func rootCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// oneLine is an error whose message is a summary of the error it wraps.
type oneLine struct {
	msg string
	err error
}

func (e *oneLine) Error() string { return e.msg }
func (e *oneLine) Unwrap() error { return e.err }
