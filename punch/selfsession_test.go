package punch

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestSessionSelfNeverDialed: a candidate equal to our own endpoint as the
// rendezvous saw it (Session.Self) is us behind our NAT, not the peer. It
// is not dialed, and when nothing else is left the punch fails at once with
// ErrOnlySelfConnects rather than running into its deadline.
func TestSessionSelfNeverDialed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var evs eventLog
	e := newEndpoint(t, netip.AddrPortFrom(lo4, 0), WithEvents(evs.add))
	public := netip.MustParseAddrPort("203.0.113.10:5000") // never dialed: it is in Self
	_, err := e.Punch(ctx, Session{
		Candidates: []netip.AddrPort{public},
		Role:       RoleControlling,
		Tag:        newTag(t),
		Self:       []netip.AddrPort{public},
	})
	// Ending with ErrOnlySelfConnects (not ErrTimeout) is failing at once.
	if !errors.Is(err, ErrOnlySelfConnects) || errors.Is(err, ErrTimeout) {
		t.Fatalf("Punch = %v, want ErrOnlySelfConnects", err)
	}
	if n := evs.count(EventAttempt, public); n != 0 {
		t.Errorf("%d attempts to our own public endpoint", n)
	}
	if n := evs.count(EventSelfConnect, public); n != 1 {
		t.Errorf("%d self-connect events for it, want 1", n)
	}
}
