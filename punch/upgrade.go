package punch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The upgrade: while a Conn is relayed, both peers keep punching for a
// direct connection in the background, on the session's candidates and
// the same Endpoint, and move the stream there when one verifies
// (pathconn.go). The background punch is an ordinary one (hello
// verification with a session tag derived for the upgrade, the
// controlling side's nomination, the SYN budget), with its events kept
// off WithEvents, and it starts the moment the relayed connection is
// made, so that the punch's SYNs never pause: a pause is a window in
// which the peer's SYN crosses our NAT, whose entry still holds our last
// SYN's sequence number, and meets our listener, whose SYN-ACK the NAT
// then drops as invalid (and whose half-open connection blocks our next
// dials to the peer for a minute). The punch's rate is the kernel's SYN
// retransmission at the attempt timeout, one SYN a second per candidate
// by default. Only a punch that ends (every candidate refused, say) is
// followed by a pause, growing as in upgradePauses, and a new punch with
// the next derived tag k, which the peer reaches the same way.

var upgradePauses = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}

// upgradeTag is the session tag of a session's k-th upgrade punch:
// SHA-256("tcpunch upgrade v1" || tag || k) truncated to 16 bytes.
func upgradeTag(tag [16]byte, k int) [16]byte {
	h := sha256.New()
	h.Write([]byte("tcpunch upgrade v1"))
	h.Write(tag[:])
	var kb [8]byte
	binary.BigEndian.PutUint64(kb[:], uint64(k))
	h.Write(kb[:])
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// startUpgrade begins the background attempts for the relayed pc, unless
// the session relays by choice (RelayAlways) or because no direct path
// can exist.
func (p *session) startUpgrade(pc *pathConn, relayedAt time.Time) {
	if p.relayOnly {
		return
	}
	var cands []netip.AddrPort
	p.mu.Lock()
	for _, c := range p.order {
		if !c.self && !errors.Is(c.err, errPolicy) {
			cands = append(cands, c.addr)
		}
	}
	p.mu.Unlock()
	if len(cands) == 0 {
		return
	}
	e, role, tag := p.e, p.role, p.tag
	if !e.hold() {
		return
	}
	pc.ep = e
	pc.moved = func(stallStart time.Time) {
		e.emit(Event{Kind: EventUpgraded, Elapsed: time.Since(relayedAt),
			Detail: fmt.Sprintf("upgraded to direct after %.1f s", time.Since(relayedAt).Seconds())})
	}
	ctx, cancel := context.WithCancel(context.Background())
	pc.stopUpgrade = cancel
	pc.upgradeWG.Add(1)
	go func() {
		defer pc.upgradeWG.Done()
		defer cancel()
		stop := context.AfterFunc(e.ctx, cancel)
		defer stop()
		go func() {
			select {
			case <-pc.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		for k := 0; ; k++ {
			if k > 0 {
				t := time.NewTimer(upgradePauses[min(k-1, len(upgradePauses)-1)])
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
			utag := upgradeTag(tag, k)
			c, err := e.Punch(ctx, Session{Candidates: cands, Role: role, Tag: utag, quiet: true})
			if err != nil {
				e.cfg.logger.Debug("upgrade attempt found no direct connection", "attempt", k, "err", err)
				continue
			}
			if c.tcp == nil || !pc.offer(c.tcp, utag) {
				c.abort()
				return
			}
			e.cfg.logger.Debug("upgrade: direct connection verified", "attempt", k, "remote", c.info.Remote)
			return
		}
	}()
}
