//go:build !linux

package punch

import (
	"net/netip"
	"testing"
)

// blackhole needs Linux's accept-queue behaviour.
func blackhole(t testing.TB) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
