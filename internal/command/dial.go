package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/internal/relay"
	"github.com/tcpunch/tcpunch/punch"
)

// DialMode says what the punched connection is attached to.
type DialMode struct {
	Local string // ADDR: listen here and punch a new connection per local client
	Exec  string // a shell command that gets the connection as stdin/stdout
}

// Dial punches to name and attaches the connection to stdin/stdout, a child
// (--exec), or, with --local, punches once per local client and proxies.
func Dial(ctx context.Context, p Peer, name string, mode DialMode) error {
	tr, err := p.Trust.resolve(name, false)
	if err != nil {
		return err
	}
	if err := p.check(tr.label); err != nil {
		return err
	}
	if tr.mode == punch.AuthCode && mode.Local != "" {
		return usageError("--local needs a secret: a one-time code is good for one connection")
	}
	if mode.Local != "" && mode.Exec != "" {
		return usageError("--local and --exec exclude each other")
	}
	if mode.Local != "" && p.Port != 0 {
		// Concurrent punches from one port to one peer would share a 4-tuple.
		return usageError("--port cannot be combined with --local: each local client gets its own punch and port")
	}
	if tr.mode == punch.AuthInsecure {
		warnInsecure(p.Stderr)
	}
	prog := newProgress(p.Stderr, p.Verbose, p.Timeout)
	if mode.Local != "" {
		return dialLocal(ctx, p, tr, mode.Local, prog)
	}
	c, err := dialOnce(ctx, p, tr, prog)
	if err != nil {
		return err
	}
	if mode.Exec != "" {
		return relay.ExecConfirmed(ctx, c, mode.Exec, p.Stderr)
	}
	return relay.PipeConfirmed(ctx, c, p.Stdin, p.Stdout)
}

func dialOnce(ctx context.Context, p Peer, tr trust, prog *progress) (*punch.Conn, error) {
	name := tr.label
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	c, err := punch.Dial(pctx, p.Rendezvous, tr.name(), append(p.options(prog), tr.option())...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, explainInterrupted(name, time.Since(start), err)
		}
		if isAuthErr(err) {
			return nil, explainAuth(tr, err)
		}
		if secretUnknown(tr, err) {
			return nil, explainSecretUnknown(p.Rendezvous, name, err)
		}
		if errors.Is(err, punch.ErrRendezvous) {
			return nil, explainRendezvous(p.Rendezvous, name, p.Port, p.Timeout, err)
		}
		if pe := (*punch.Error)(nil); !errors.As(err, &pe) {
			return nil, explainLocal(p.Port, err)
		}
		return nil, explain(name, p.Timeout, prog.peerInfo(netip.AddrPort{}), err)
	}
	prog.connected(c.Info(), p.Report == "json")
	return c, nil
}

func dialLocal(ctx context.Context, p Peer, tr trust, local string, prog *progress) error {
	name := tr.label
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", local)
	if err != nil {
		return usageError("--local %s: %v", local, err)
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	prog.printf("accepting local clients on %v; each is punched through to %q", ln.Addr(), name)
	if err := ready.Notify(p.ReadyFD, ln.Addr().String()); err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		client, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accepting local clients: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialOnce(ctx, p, tr, prog)
			if err != nil {
				client.Close()
				if ctx.Err() == nil {
					prog.printf("local client %v: %v", client.RemoteAddr(), err)
				}
				return
			}
			if err := relay.ProxyConfirmed(ctx, c, client); err != nil && ctx.Err() == nil {
				prog.printf("local client %v: %v", client.RemoteAddr(), err)
			}
		}()
	}
}
