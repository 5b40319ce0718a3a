package punch

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// reportTimeout bounds writing a punch's outcome report to the server: it
// is one small write on a connection that is already open.
const reportTimeout = time.Second

// outcome is the report of a punch that returned c or err after elapsed,
// with the NAT classes of both sides as the peer info gave them. ok is
// false when there is nothing to report: the punch was abandoned (its
// context cancelled, the endpoint closed), not decided.
func outcome(pi rendezvous.PeerInfo, c *Conn, err error, elapsed time.Duration) (r rendezvous.PunchReport, ok bool) {
	r = rendezvous.PunchReport{Method: rendezvous.PunchNone, LocalNAT: pi.LocalClass, PeerNAT: pi.Class}
	if c != nil {
		info := c.Info()
		r.Path, r.Method, r.TimeToConnect = rendezvous.PathDirect, reportMethod(info.Method), info.Elapsed
		if info.Path == PathRelay {
			r.Path, r.Method = rendezvous.PathRelay, rendezvous.PunchNone
		}
		for _, n := range info.Attempts {
			r.Attempts += n
		}
		return r, true
	}
	var pe *Error
	if !errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, net.ErrClosed) {
		return r, false
	}
	r.Path, r.TimeToConnect = rendezvous.PathFailed, elapsed
	for _, c := range pe.Candidates {
		r.Attempts += c.Attempts
	}
	return r, true
}

func reportMethod(m Method) rendezvous.PunchMethod {
	switch m {
	case MethodSimultaneousOpen:
		return rendezvous.PunchSimultaneousOpen
	case MethodAccept:
		return rendezvous.PunchAccept
	case MethodConnect:
		return rendezvous.PunchConnect
	}
	return rendezvous.PunchOther
}

// report sends the outcome of the punch of pi's session to the server,
// unless WithoutOutcomeReport. It is best effort: a server that is gone
// or old loses nothing but a count.
func report(ctx context.Context, cfg *config, to rendezvous.Reporter, pi rendezvous.PeerInfo, c *Conn, err error, elapsed time.Duration) {
	if cfg.noReport || to == nil {
		return
	}
	r, ok := outcome(pi, c, err, elapsed)
	if !ok {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	if err := to.Report(rctx, pi.Tag, r); err != nil {
		cfg.logger.Debug("punch outcome not reported", "err", err)
		return
	}
	cfg.logger.LogAttrs(ctx, slog.LevelDebug, "punch outcome reported", slog.String("path", string(r.Path)),
		slog.String("method", string(r.Method)), slog.Duration("time", r.TimeToConnect), slog.Int("attempts", r.Attempts))
}
