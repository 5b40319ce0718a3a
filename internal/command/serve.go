package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// ServeConfig is what `tcpunch serve` takes besides the server's options.
type ServeConfig struct {
	Listen  string        // ADDR to listen on
	Logger  *slog.Logger  // required
	Grace   time.Duration // how long shutdown waits for peers to be told
	ReadyFD int           // --ready-fd: gets the listening address once listening (package ready); 0 for none
}

// Serve runs the rendezvous/STUN server until ctx ends, then shuts it down
// gracefully: connected peers are told, and shutdown waits at most
// cfg.Grace.
func Serve(ctx context.Context, cfg ServeConfig, opts ...rendezvous.ServerOption) error {
	logger, grace := cfg.Logger, cfg.Grace
	// net.ListenConfig keeps the kernel's somaxconn as the backlog, so a
	// burst of connects is queued rather than refused.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	logger.Info("listening", "addr", ln.Addr().String())
	if err := ready.Notify(cfg.ReadyFD, ln.Addr().String()); err != nil {
		ln.Close()
		return err
	}
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
