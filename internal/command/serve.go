package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// Serve runs the rendezvous/STUN server on addr until ctx ends, then shuts
// it down gracefully: connected peers are told, and shutdown waits at most
// grace.
func Serve(ctx context.Context, addr string, logger *slog.Logger, grace time.Duration, opts ...rendezvous.ServerOption) error {
	// net.ListenConfig keeps the kernel's somaxconn as the backlog, so a
	// burst of connects is queued rather than refused.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	logger.Info("listening", "addr", ln.Addr().String())
	srv := rendezvous.NewServer(append([]rendezvous.ServerOption{rendezvous.WithLogger(logger)}, opts...)...)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, rendezvous.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// AltAddrs parses --alt-addr values, IP or IP:PORT (PORT defaulting to the
// --listen port + 1), into server options.
func AltAddrs(values []string, listen string) ([]rendezvous.ServerOption, error) {
	var opts []rendezvous.ServerOption
	for _, v := range values {
		ap, err := netip.ParseAddrPort(v)
		if err != nil {
			ip, ierr := netip.ParseAddr(strings.Trim(v, "[]"))
			if ierr != nil {
				return nil, usageError("--alt-addr %q: want IP or IP:PORT ([IPv6]:PORT)", v)
			}
			_, p, err := net.SplitHostPort(listen)
			port, perr := strconv.Atoi(p)
			if err != nil || perr != nil || port <= 0 || port >= 65535 {
				return nil, usageError("--alt-addr %q without a port needs a --listen with a port", v)
			}
			ap = netip.AddrPortFrom(ip, uint16(port+1))
		}
		opts = append(opts, rendezvous.WithAltAddr(ap))
	}
	return opts, nil
}
