package rendezvous

import (
	"net/netip"
	"testing"
	"time"
)

// TestDialBackRatePerPrefix: the dial-back bucket counts a source by its
// prefix, so many addresses of one prefix share it (an IPv6 /64 holder is
// bound), while another prefix is unaffected. On loopback the prefix is an
// IPv4 /24 (WithSourcePrefix), the same machinery as the /64.
func TestDialBackRatePerPrefix(t *testing.T) {
	ctx := testCtx(t)
	srv, addr := altServer(t, WithDialBack(time.Second, 2, 8), WithSourcePrefix(24, 64))
	nonce := [DialBackNonceSize]byte{7}
	// Three addresses of 127.0.0.0/24, a burst of 2: the third is refused.
	for i, src := range []string{"127.0.0.3:0", "127.0.0.4:0", "127.0.0.5:0"} {
		p, err := DialProbe(ctx, addr, ap(src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.DialBack(ctx, nonce)
		p.Close()
		if i < 2 && err != nil {
			t.Fatalf("dial-back %d from %s: %v", i, src, err)
		}
		if i == 2 && serverCode(err) != CodeTooManyRequests {
			t.Fatalf("dial-back from a third address of the /24: %v, want 429", err)
		}
	}
	// Another /24 has its own bucket.
	p, err := DialProbe(ctx, addr, ap("127.0.1.3:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.DialBack(ctx, nonce); err != nil {
		t.Fatalf("dial-back from another prefix: %v, want it served", err)
	}
	if st := srv.Stats(); st.DialBackRateLimited != 1 || st.DialBackBusy != 0 {
		t.Errorf("stats %+v: want DialBackRateLimited 1, DialBackBusy 0", st)
	}
}

// TestDialBackLimiterIPv6Prefix: addresses of one /64 share a bucket, a
// neighbouring /64 does not; the table stays within its bound under many
// prefixes.
func TestDialBackLimiterIPv6Prefix(t *testing.T) {
	cfg := newServerConfig(nil)
	cfg.dialBackBurst, cfg.maxRateEntries = 2, 16
	l := newDialBackLimiter(cfg)
	now := time.Now()
	pfx := func(s string) netip.Prefix { return sourcePrefix(netip.MustParseAddr(s), 32, 64) }
	for i, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if !l.rate.allow(pfx(a), now) {
			t.Fatalf("address %d of the /64 refused within the burst", i)
		}
	}
	if l.rate.allow(pfx("2001:db8:1:2:abcd::77"), now) {
		t.Error("a third address of the same /64 was let through past the burst")
	}
	if !l.rate.allow(pfx("2001:db8:1:3::1"), now) {
		t.Error("another /64 was refused")
	}
	for i := range 1000 {
		l.rate.allow(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 9, byte(i >> 8), byte(i), 0}), 64), now)
	}
	if n := l.rate.len(); n > 16 {
		t.Errorf("bucket table holds %d entries, bound 16", n)
	}
}
