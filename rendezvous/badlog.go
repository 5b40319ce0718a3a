package rendezvous

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// badLog aggregates the log lines of bad connections: the first from a
// source prefix in an interval is logged at once, the rest are counted and
// reported as one line when the interval has passed. A flood of garbage
// then costs a line per source per interval, not a line per connection.
// The table is bounded; past it, sources share one entry.
type badLog struct {
	log      *slog.Logger
	interval time.Duration
	max      int

	mu      sync.Mutex
	entries map[netip.Prefix]*badEntry
	flushAt time.Time
}

type badEntry struct {
	reason string // the first reason in the interval
	since  time.Time
	n      int // events after the first, not logged yet
}

const (
	badLogInterval = 10 * time.Second
	badLogMax      = 4096
)

var overflowPrefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)

func newBadLog(log *slog.Logger) *badLog {
	return &badLog{log: log, interval: badLogInterval, max: badLogMax, entries: make(map[netip.Prefix]*badEntry)}
}

// note records one bad event from src.
func (b *badLog) note(src netip.Prefix, reason string) {
	now := time.Now()
	b.mu.Lock()
	b.flushLocked(now)
	e, ok := b.entries[src]
	if !ok && len(b.entries) >= b.max {
		src = overflowPrefix
		e, ok = b.entries[src]
	}
	if ok {
		e.n++
		b.mu.Unlock()
		return
	}
	b.entries[src] = &badEntry{reason: reason, since: now}
	b.mu.Unlock()
	b.log.Info("closing connection: "+reason, "source", src.String())
}

// flushLocked reports and forgets the entries whose interval has passed.
func (b *badLog) flushLocked(now time.Time) {
	if now.Before(b.flushAt) {
		return
	}
	b.flushAt = now.Add(b.interval / 4)
	for src, e := range b.entries {
		if now.Sub(e.since) < b.interval {
			continue
		}
		if e.n > 0 {
			b.log.Info("more bad connections from source", "source", src.String(), "count", e.n,
				"interval", b.interval, "first_reason", e.reason)
		}
		delete(b.entries, src)
	}
}
