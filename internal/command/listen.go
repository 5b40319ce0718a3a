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
	if err := p.check(name); err != nil {
		return err
	}
	if mode.Forward != "" && mode.Exec != "" {
		return usageError("--forward and --exec exclude each other")
	}
	prog := newProgress(p.Stderr, p.Verbose, p.Timeout)
	// A server that is down or restarting is retried, but not forever: a
	// mistyped address should not look like a listener that works.
	rctx, cancel := context.WithTimeout(ctx, p.Timeout)
	ln, err := punch.Listen(rctx, p.Rendezvous, name, p.options(prog)...)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, punch.ErrRendezvous) {
			return explainRendezvous(p.Rendezvous, name, p.Port, p.Timeout, err)
		}
		return explainLocal(p.Port, err)
	}
	defer ln.Close()
	// Accept blocks; ctx ending must unblock it.
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	prog.printf("listening as %q via %s", name, p.Rendezvous)
	if err := ready.Notify(p.ReadyFD, ln.Addr().String()); err != nil {
		return err
	}

	if mode.Forward == "" && mode.Exec == "" {
		c, err := ln.Accept()
		if err != nil {
			return acceptError(ctx, err)
		}
		ln.Close() // like nc -l: one connection, then no more registrations
		prog.connected(c.(*punch.Conn).Info(), p.Report == "json")
		return relay.Pipe(ctx, c, p.Stdin, p.Stdout)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil // a service stopped by a signal is a clean exit
			}
			return acceptError(ctx, err)
		}
		prog.connected(c.(*punch.Conn).Info(), p.Report == "json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if mode.Forward != "" {
				err = forward(ctx, c, mode.Forward)
			} else {
				err = relay.Exec(ctx, c, mode.Exec, p.Stderr)
			}
			if err != nil && ctx.Err() == nil {
				prog.printf("connection from %v: %v", c.RemoteAddr(), err)
			}
		}()
	}
}

func forward(ctx context.Context, c net.Conn, target string) error {
	var d net.Dialer
	svc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		c.Close()
		return fmt.Errorf("forwarding to %s: %w", target, err)
	}
	return relay.Proxy(ctx, c, svc)
}

func acceptError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("listener closed: %w", err)
	}
	return fmt.Errorf("accepting: %w", err)
}
