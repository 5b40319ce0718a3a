package testnet

import (
	"net/netip"
	"os"
	"testing"
)

// RequireBlackhole is [Blackhole] for a test that means nothing without
// one: when none can be built here it skips the test, and under CI=true
// (where every prerequisite must be present) it fails it instead.
func RequireBlackhole(t testing.TB) netip.AddrPort {
	t.Helper()
	addr, ok := Blackhole(t)
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("no blackhole address can be built on this system; CI=true: failing instead of skipping")
		}
		t.Skip("no blackhole address can be built on this system")
	}
	return addr
}
