package punch

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func withUpgradePlan(p upgradePlan) Option { return func(c *config) { c.upgrade = &p } }

// TestUpgradeRoundOnFreshPort: a relayed pair whose session candidate
// refuses (round 0 can never connect) moves to a direct connection in
// round 1, found on fresh ports whose candidates crossed the relay in
// CANDIDATES frames; both directions arrive whole and in order, and Info
// says direct, round 1.
func TestUpgradeRoundOnFreshPort(t *testing.T) {
	server, _ := rendezvousAt(t, "127.0.0.1:0")
	token := relayTokens(t, server)
	ctx := testCtx(t)
	plan := upgradePlan{sameTuple: 500 * time.Millisecond, roundPunch: 5 * time.Second, candWait: 5 * time.Second,
		pauses: []time.Duration{time.Second}, rounds: 2}
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	ea := newEndpoint(t, lo, WithRelayBudget(200*time.Millisecond), withUpgradePlan(plan))
	eb := newEndpoint(t, lo, WithRelayBudget(200*time.Millisecond), withUpgradePlan(plan))
	// Refused at once and for good: the session's own tuple is stuck.
	dead := netip.MustParseAddrPort("127.0.0.1:1")
	tag := newTag(t)
	relay := &Relay{Server: server, Token: token}
	var ca, cb *Conn
	var erra, errb error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ca, erra = ea.Punch(ctx, Session{Candidates: []netip.AddrPort{dead}, Role: RoleControlling, Tag: tag, Relay: relay})
	}()
	go func() {
		defer wg.Done()
		cb, errb = eb.Punch(ctx, Session{Candidates: []netip.AddrPort{dead}, Role: RoleControlled, Tag: tag, Relay: relay})
	}()
	wg.Wait()
	if erra != nil || errb != nil {
		t.Fatalf("punch: %v, %v", erra, errb)
	}
	defer ca.Close()
	defer cb.Close()
	if ca.Info().Path != PathRelay || cb.Info().Path != PathRelay {
		t.Fatalf("paths %v, %v; want relay", ca.Info().Path, cb.Info().Path)
	}

	// Both sides write paced chunks until both report the move, then a
	// little more, and half-close; each reads the other's whole stream.
	moved := func() bool { return ca.Info().Path == PathDirect && cb.Info().Path == PathDirect }
	deadline := time.Now().Add(20 * time.Second)
	write := func(c *Conn, seed uint64) [32]byte {
		r := rand.New(rand.NewPCG(seed, seed))
		h := sha256.New()
		buf := make([]byte, 16<<10)
		var after time.Time
		for time.Now().Before(deadline) {
			if after.IsZero() && moved() {
				after = time.Now()
			}
			if !after.IsZero() && time.Since(after) > 200*time.Millisecond {
				break
			}
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			if _, err := c.Write(buf); err != nil {
				t.Errorf("write: %v", err)
				break
			}
			h.Write(buf)
			time.Sleep(2 * time.Millisecond)
		}
		if err := c.CloseWrite(); err != nil {
			t.Errorf("CloseWrite: %v", err)
		}
		return [32]byte(h.Sum(nil))
	}
	read := func(c *Conn) ([32]byte, error) {
		h := sha256.New()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(h, c)
		return [32]byte(h.Sum(nil)), err
	}
	var sentA, sentB, gotA, gotB [32]byte
	var rerrA, rerrB error
	wg.Add(4)
	go func() { defer wg.Done(); sentA = write(ca, 1) }()
	go func() { defer wg.Done(); sentB = write(cb, 2) }()
	go func() { defer wg.Done(); gotB, rerrB = read(cb) }()
	go func() { defer wg.Done(); gotA, rerrA = read(ca) }()
	wg.Wait()
	if !moved() {
		t.Fatalf("no move within 20 s: %+v / %+v", ca.Info(), cb.Info())
	}
	if rerrA != nil || rerrB != nil || gotB != sentA || gotA != sentB {
		t.Fatalf("streams: read errors %v, %v; digests match %v, %v", rerrA, rerrB, gotB == sentA, gotA == sentB)
	}
	for _, c := range []*Conn{ca, cb} {
		i := c.Info()
		if i.Upgrade.Round != 1 || i.Remote.Port() == dead.Port() || i.Upgrade.After < plan.sameTuple {
			t.Errorf("%+v: want the move in round 1, to a fresh port, after round 0", i)
		}
		t.Logf("moved in round %d after %v; read stall %v (measured %v), write stall %v", i.Upgrade.Round, i.Upgrade.After.Round(time.Millisecond), i.Upgrade.ReadStall, i.Upgrade.ReadStallMeasured, i.Upgrade.WriteStall)
	}
}
