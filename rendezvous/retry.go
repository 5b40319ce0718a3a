package rendezvous

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// retrying runs op until it succeeds, fails in a way another try cannot
// fix, or ctx ends, waiting the client's backoff between tries. It is how
// a first registration or a Connect rides out a server that is down or
// restarting: the same situations a live Registration reconnects through.
// Each try gets its own request timeout.
func retrying[T any](ctx context.Context, cfg *clientConfig, log *slog.Logger, op func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, cfg.requestTimeout)
		v, err := op(tctx)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return v, err
		}
		wait := backoff(attempt, cfg.backoffMin, cfg.backoffMax)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return v, err // the next try could not finish in time
		}
		level := slog.LevelDebug
		if attempt == 0 {
			level = slog.LevelInfo
		}
		log.Log(ctx, level, "rendezvous server not reachable; retrying", "err", err, "in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return v, err
		}
	}
}

// retryable says whether a failed exchange with the server may succeed if
// tried again: the server was down, restarting or full, or the connection
// broke, but it did not refuse the request itself.
func retryable(err error) bool {
	var se *ServerError
	if errors.As(err, &se) {
		switch se.Code {
		case CodeShuttingDown, CodeCapacity, CodeServerError:
			return true
		}
		return false
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return false
	}
	// A server address that does not parse (no port, a bad port, a
	// malformed literal) will not parse on the next try either.
	var ae *net.AddrError
	var pe *net.ParseError
	if errors.As(err, &ae) || errors.As(err, &pe) {
		return false
	}
	return !errors.Is(err, context.Canceled)
}
