package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
