//go:build !linux

package testnet

import (
	"net/netip"
	"testing"
)

// Blackhole is Linux-only: elsewhere ok is false.
func Blackhole(t testing.TB) (addr netip.AddrPort, ok bool) { return netip.AddrPort{}, false }
