package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/internal/relay"
	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// ListenMode says what happens to each accepted connection.
type ListenMode struct {
	Forward string // HOST:PORT: proxy every connection to this local service
	Exec    string // a shell command that gets each connection as stdin/stdout
}

// Listen registers name and serves punched connections: the first one piped
// to stdin/stdout (like nc -l), or with --forward/--exec every one until
// ctx ends.
func Listen(ctx context.Context, p Peer, name string, mode ListenMode) error {
	tr, err := p.Trust.resolve(name, true)
	if err != nil {
		return err
	}
	if err := p.check(tr.label); err != nil {
		return err
	}
	if mode.Forward != "" && mode.Exec != "" {
		return usageError("--forward and --exec exclude each other")
	}
	if tr.mode == punch.AuthInsecure {
		warnInsecure(p.Stderr)
	}
	prog := newProgress(p.Stderr, p.Verbose, p.Timeout)
	ln, tr, err := listenTrusted(ctx, p, tr, prog)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, punch.ErrRendezvous) {
			return explainRendezvous(p.Rendezvous, tr.label, p.Port, p.Timeout, err)
		}
		return explainLocal(p.Port, err)
	}
	defer ln.Close()
	// Accept blocks; ctx ending must unblock it.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	switch tr.mode {
	case punch.AuthCode:
		prog.printf("one-time code: %s", tr.code)
		prog.printf("on the other side run: tcpunch dial -r %s %s", p.Rendezvous, tr.code)
		prog.printf("listening for the code's one connection via %s", p.Rendezvous)
	case punch.AuthSecret:
		prog.printf("listening as %q via %s (secret; the server sees only a name derived from it)", tr.label, p.Rendezvous)
	default:
		prog.printf("listening as %q via %s (insecure)", tr.label, p.Rendezvous)
	}
	if err := ready.Notify(p.ReadyFD, ln.Addr().String()); err != nil {
		return err
	}

	// One connection: pipe mode (like nc -l), and any mode with a one-time
	// code (the code is retired once used).
	if (mode.Forward == "" && mode.Exec == "") || tr.mode == punch.AuthCode {
		c, err := ln.Accept()
		if err != nil {
			return acceptError(ctx, tr, err)
		}
		ln.Close() // like nc -l: one connection, then no more registrations
		pc := c.(*punch.Conn)
		prog.connected(pc.Info(), p.Report == "json")
		return serveConn(ctx, pc, mode, p)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil // a service stopped by a signal is a clean exit
			}
			return acceptError(ctx, tr, err)
		}
		pc := c.(*punch.Conn)
		prog.connected(pc.Info(), p.Report == "json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveConn(ctx, pc, mode, p); err != nil && ctx.Err() == nil {
				prog.printf("connection from %v: %v", pc.RemoteAddr(), err)
			}
		}()
	}
}

// listenTrusted registers; a generated code whose nameplate another
// listener holds is replaced by a new one (a few times).
func listenTrusted(ctx context.Context, p Peer, tr trust, prog *progress) (*punch.Listener, trust, error) {
	for try := 0; ; try++ {
		// A server that is down or restarting is retried, but not forever:
		// a mistyped address should not look like a listener that works.
		rctx, cancel := context.WithTimeout(ctx, p.Timeout)
		ln, err := punch.Listen(rctx, p.Rendezvous, tr.name(), append(p.options(prog), tr.option())...)
		cancel()
		if err == nil || tr.mode != punch.AuthCode || try == 4 || !errors.Is(err, rendezvous.ErrNameTaken) {
			return ln, tr, err
		}
		code, gerr := punch.GenerateCode()
		if gerr != nil {
			return nil, tr, gerr
		}
		tr.code, tr.label = code, code.String()
	}
}

// serveConn runs one accepted connection in the listen mode.
func serveConn(ctx context.Context, c *punch.Conn, mode ListenMode, p Peer) error {
	switch {
	case mode.Forward != "":
		return forward(ctx, c, mode.Forward)
	case mode.Exec != "":
		return relay.ExecConfirmed(ctx, c, mode.Exec, p.Stderr)
	}
	return relay.PipeConfirmed(ctx, c, p.Stdin, p.Stdout)
}

func forward(ctx context.Context, c *punch.Conn, target string) error {
	var d net.Dialer
	svc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		c.Close()
		return fmt.Errorf("forwarding to %s: %w", target, err)
	}
	return relay.ProxyConfirmed(ctx, c, svc)
}

func acceptError(ctx context.Context, tr trust, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if isAuthErr(err) {
		return explainAuth(tr, err)
	}
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("listener closed: %w", err)
	}
	return fmt.Errorf("accepting: %w", err)
}
