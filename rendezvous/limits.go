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

// connLimiter counts connections, in total and per source IP, so one
// address cannot take the whole server.
type connLimiter struct {
	perIP, total int // <= 0: no cap
	mu           sync.Mutex
	byIP         map[netip.Addr]int
	n            int
}

func newConnLimiter(perIP, total int) *connLimiter {
	return &connLimiter{perIP: perIP, total: total, byIP: make(map[netip.Addr]int)}
}

// acquire takes a slot for ip; on refusal it returns the error code to send.
func (l *connLimiter) acquire(ip netip.Addr) (ok bool, code int) {
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

func (l *connLimiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}
