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

	"github.com/tcpunch/tcpunch/internal/admin"
	"github.com/tcpunch/tcpunch/internal/ingress"
	"github.com/tcpunch/tcpunch/internal/metrics"
	"github.com/tcpunch/tcpunch/internal/ready"
	"github.com/tcpunch/tcpunch/internal/sdnotify"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// ServeConfig is what `tcpunch serve` runs with, beside the server's own
// options.
type ServeConfig struct {
	Listen string // ADDR of the rendezvous server
	Admin  string // ADDR of /metrics, /livez, /readyz; "" for none
	// DrainDelay is how long the server keeps serving after SIGTERM with
	// /readyz at 503, so a balancer stops sending peers before the server
	// stops accepting. DrainGrace bounds the shutdown after it (peers told,
	// connections and relayed sessions ended).
	DrainDelay, DrainGrace time.Duration
	// ProxyFrom are the sources that must send a PROXY protocol header;
	// empty turns the PROXY protocol off.
	ProxyFrom          []string
	ProxyHeaderTimeout time.Duration
	Logger             *slog.Logger
	ReadyFD            int // --ready-fd: gets the listening address once listening (package ready); 0 for none
}

// Serve runs the rendezvous server as `tcpunch serve` does until ctx
// ends (SIGTERM), then drains: /readyz turns 503 at once and systemd is
// told STOPPING=1; after the drain delay the server stops accepting, sends
// every peer a Goodbye (503) and waits up to the drain grace for the rest.
func Serve(ctx context.Context, cfg ServeConfig, opts ...rendezvous.ServerOption) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	trusted, err := ingress.ParsePrefixes(cfg.ProxyFrom)
	if err != nil {
		return usageError("--proxy-protocol-from: %v", err)
	}
	if len(cfg.ProxyFrom) > 0 && len(trusted) == 0 {
		return usageError("--proxy-protocol-from: no address or prefix given")
	}

	// net.ListenConfig keeps the kernel's somaxconn as the backlog, so a
	// burst of connects is queued rather than refused.
	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	logger.Info("listening", "addr", raw.Addr().String())
	if err := ready.Notify(cfg.ReadyFD, raw.Addr().String()); err != nil {
		raw.Close()
		return err
	}

	var m *metrics.Metrics
	var adm *admin.Server
	if cfg.Admin != "" {
		m = metrics.New()
		opts = append(opts[:len(opts):len(opts)], rendezvous.WithTracer(m))
		adm = admin.New(m.Registry(), logger)
		if err := adm.Listen(ctx, cfg.Admin); err != nil {
			raw.Close()
			return err
		}
		logger.Info("admin endpoints up", "admin", adm.Addr().String(), "paths", "/metrics /livez /readyz")
	}

	ln := raw
	if len(trusted) > 0 {
		iopts := []ingress.Option{ingress.WithLogger(logger), ingress.WithHeaderTimeout(cfg.ProxyHeaderTimeout)}
		if m != nil {
			iopts = append(iopts, ingress.WithCounter(m.ProxyHeader))
		}
		ln = ingress.ProxyListener(raw, trusted, iopts...)
		logger.Info("PROXY protocol on: a header is required from these sources and refused from all others",
			"from", fmt.Sprint(trusted), "header_timeout", cfg.ProxyHeaderTimeout)
	} else {
		ln = ingress.WatchBalancer(raw, ingress.WithLogger(logger))
	}

	srv := rendezvous.NewServer(append([]rendezvous.ServerOption{rendezvous.WithLogger(logger)}, opts...)...)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if adm != nil {
		adm.SetReady(true)
	}
	notify(logger, sdnotify.Ready)

	select {
	case err := <-errc:
		shutdownAdmin(adm, logger)
		return fmt.Errorf("serving on %s: %w", raw.Addr(), err)
	case <-ctx.Done():
	}
	// Readiness first: a balancer polling /readyz stops sending peers
	// while the server still serves them.
	if adm != nil {
		adm.Drain()
		m.Draining()
	}
	notify(logger, sdnotify.Stopping)
	logger.Info("draining", "delay", cfg.DrainDelay, "grace", cfg.DrainGrace)
	if cfg.DrainDelay > 0 {
		select {
		case <-time.After(cfg.DrainDelay):
		case err := <-errc:
			errc <- err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainGrace)
	defer cancel()
	err = srv.Shutdown(sctx)
	shutdownAdmin(adm, logger)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// The grace ran out with relayed sessions still running: they were
		// ended and told why. That is the drain doing its job, not a
		// failure of the service.
		logger.Warn("drain grace over: sessions still running were ended", "grace", cfg.DrainGrace)
	case err != nil:
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, rendezvous.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", raw.Addr(), err)
	}
	return nil
}

func notify(logger *slog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		logger.Warn("telling systemd", "state", state, "err", err)
	}
}

func shutdownAdmin(adm *admin.Server, logger *slog.Logger) {
	if adm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := adm.Shutdown(ctx); err != nil {
		logger.Warn("stopping the admin listener", "err", err)
	}
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
