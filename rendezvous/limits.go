package rendezvous

import (
	"fmt"
	"net/netip"
	"sync"
)

// defaultNameRule accepts 1 to maxLen letters, digits, '.', '_' and '-':
// names end up in logs, shell commands and URLs, where anything else bites.
func defaultNameRule(maxLen int) func(string) error {
	return func(name string) error {
		if len(name) == 0 || len(name) > maxLen {
			return fmt.Errorf("name must be 1 to %d characters", maxLen)
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
			if !ok {
				return fmt.Errorf("name may contain only %s", defaultNameCharsetDesc)
			}
		}
		return nil
	}
}

// connLimiter counts connections, in total and per source prefix (an IPv4
// address, an IPv6 /64 by default: see WithSourcePrefix), so one source
// cannot take the whole server.
type connLimiter struct {
	perIP, total   int // <= 0: no cap
	v4Bits, v6Bits int
	mu             sync.Mutex
	byIP           map[netip.Prefix]int
	n              int
}

func newConnLimiter(perIP, total, v4Bits, v6Bits int) *connLimiter {
	return &connLimiter{perIP: perIP, total: total, v4Bits: v4Bits, v6Bits: v6Bits, byIP: make(map[netip.Prefix]int)}
}

// acquire takes a slot for addr's source; on refusal it returns the error
// code to send.
func (l *connLimiter) acquire(addr netip.Addr) (ok bool, code int) {
	ip := sourcePrefix(addr, l.v4Bits, l.v6Bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.n >= l.total {
		return false, CodeCapacity
	}
	if l.perIP > 0 && l.byIP[ip] >= l.perIP {
		return false, CodeTooManyConns
	}
	l.n++
	l.byIP[ip]++
	return true, 0
}

func (l *connLimiter) release(addr netip.Addr) {
	ip := sourcePrefix(addr, l.v4Bits, l.v6Bits)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}
