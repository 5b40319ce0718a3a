package rendezvous

import (
	"fmt"
	"math"
)

// rateOption validates a rate and burst and stores them with set.
func rateOption(call string, perSecond float64, burst int, set func(*serverConfig, rate)) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		switch {
		case perSecond < 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0):
			c.invalid(call, "the rate must be 0 (no limit) or a positive number")
		case perSecond > 0 && burst < 1:
			c.invalid(call, "the burst must be at least 1")
		default:
			set(c, rate{perSec: perSecond, burst: float64(burst)})
		}
	})
}

// WithRegisterRate limits Register requests per source prefix (see
// [WithSourcePrefix]) to perSecond, with bursts of burst (defaults 2/s,
// 10). Over it, Register is answered 429 and the connection closed.
// perSecond 0 removes the limit.
func WithRegisterRate(perSecond float64, burst int) ServerOption {
	return rateOption(fmt.Sprintf("WithRegisterRate(%v, %d)", perSecond, burst), perSecond, burst,
		func(c *serverConfig, r rate) { c.registerRate = r })
}

// WithConnectRate limits Connect requests per source prefix (defaults
// 10/s, bursts of 20); over it, 429. perSecond 0 removes the limit.
func WithConnectRate(perSecond float64, burst int) ServerOption {
	return rateOption(fmt.Sprintf("WithConnectRate(%v, %d)", perSecond, burst), perSecond, burst,
		func(c *serverConfig, r rate) { c.connectRate = r })
}

// WithUnknownNameRate limits 404 answers (Connects to names nobody holds)
// per source prefix (defaults 2/s, bursts of 10), so names cannot be
// enumerated quickly; over it, 429. perSecond 0 removes the limit.
func WithUnknownNameRate(perSecond float64, burst int) ServerOption {
	return rateOption(fmt.Sprintf("WithUnknownNameRate(%v, %d)", perSecond, burst), perSecond, burst,
		func(c *serverConfig, r rate) { c.unknownRate = r })
}

// WithNameConnectRate limits the Connects to one registered name from all
// sources together (defaults 20/s, bursts of 40): it bounds the peer infos
// a listener receives. Over it, 429. perSecond 0 removes the limit.
func WithNameConnectRate(perSecond float64, burst int) ServerOption {
	return rateOption(fmt.Sprintf("WithNameConnectRate(%v, %d)", perSecond, burst), perSecond, burst,
		func(c *serverConfig, r rate) { c.nameConnectRate = r })
}

// WithSourcePrefix sets the prefix lengths a source is counted by, for the
// rate limits and for [WithMaxConnsPerIP] (defaults /32 for IPv4 and /64
// for IPv6: one IPv6 subscriber holds at least a /64). v4Bits must be 0 to
// 32 and v6Bits 0 to 128.
func WithSourcePrefix(v4Bits, v6Bits int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if v4Bits < 0 || v4Bits > 32 || v6Bits < 0 || v6Bits > 128 {
			c.invalid(fmt.Sprintf("WithSourcePrefix(%d, %d)", v4Bits, v6Bits), "IPv4 bits must be 0 to 32, IPv6 bits 0 to 128")
			return
		}
		c.v4Bits, c.v6Bits = v4Bits, v6Bits
	})
}

// WithMaxRateEntries bounds each rate-limit table (default 65536 sources
// or names). When a table is full of active entries, new ones share one
// bucket, so memory stays bounded under a flood from many prefixes. n
// must be at least 1.
func WithMaxRateEntries(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if n < 1 {
			c.invalid(fmt.Sprintf("WithMaxRateEntries(%d)", n), "must be at least 1")
			return
		}
		c.maxRateEntries = n
	})
}

// WithLoopbackCandidates decides whether loopback host candidates are
// handed out. By default they are when the server itself listens on
// loopback (tests, the loopback demo) and never otherwise. false withholds
// them always (tests of the candidate policy on a loopback server); true
// hands them out always.
func WithLoopbackCandidates(allow bool) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		if allow {
			c.loopback = 1
		} else {
			c.loopback = -1
		}
	})
}
