package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves the admin endpoints. The zero value is not usable; create
// it with [New].
type Server struct {
	log      *slog.Logger
	http     *http.Server
	ln       net.Listener
	ready    atomic.Bool
	draining atomic.Bool
}

// New returns an admin server for the metrics in reg; it serves nothing
// until [Server.Listen]. It starts not ready: call [Server.SetReady] once
// the service serves.
func New(reg *prometheus.Registry, log *slog.Logger) *Server {
	s := &Server{log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slogErrorLog{log},
		Registry:          reg, // promhttp_metric_handler_* about the scrapes themselves
		EnableOpenMetrics: true,
		Timeout:           10 * time.Second,
	}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
	case !s.ready.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready")
	default:
		fmt.Fprintln(w, "ok")
	}
}

// Listen starts serving on addr (host:port) in the background.
func (s *Server) Listen(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: listening on %s: %w", addr, err)
	}
	s.ln = ln
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin: serving", "err", err)
		}
	}()
	return nil
}

// Addr is the address served, nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// SetReady says whether the service serves (/readyz 200 unless draining).
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Drain turns /readyz to 503 for good.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops the admin listener, letting requests in flight finish
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin: shutting down: %w", err)
	}
	return nil
}

// slogErrorLog is promhttp's error logger on slog.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) { l.log.Warn("admin: /metrics", "err", fmt.Sprint(v...)) }
