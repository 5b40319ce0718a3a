package punch

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestCandidatesRoundTrip(t *testing.T) {
	cands := []netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.9:5000"),
		netip.MustParseAddrPort("[::ffff:10.0.1.2]:5000"), // mapped: sent as IPv4
		netip.MustParseAddrPort("[2001:db8::1]:5000"),
	}
	b, err := marshalCandidates(maxUpgradeRounds, cands)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := parseCandidates(b)
	if err != nil {
		t.Fatal(err)
	}
	if rc.round != maxUpgradeRounds || len(rc.cands) != 3 || rc.cands[0] != cands[0] || rc.cands[1] != netip.MustParseAddrPort("10.0.1.2:5000") || rc.cands[2] != cands[2] {
		t.Fatalf("parsed %+v from %v", rc, cands)
	}
	full := make([]netip.AddrPort, maxRoundCandidates)
	for i := range full {
		full[i] = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(1000+i))
	}
	if b, err := marshalCandidates(1, full); err != nil || len(b) != maxCandidatesFrame {
		t.Fatalf("the longest list: %d bytes, %v; want %d", len(b), err, maxCandidatesFrame)
	}
}

// TestCandidatesMalformed: every malformed or oversized payload is an
// error naming what is wrong, never a panic or a partial list.
func TestCandidatesMalformed(t *testing.T) {
	v4 := []byte{4, 203, 0, 113, 9, 0x13, 0x88}
	frame := func(round uint32, n byte, entries ...[]byte) []byte {
		b := []byte{byte(round >> 24), byte(round >> 16), byte(round >> 8), byte(round), n}
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	cases := []struct {
		name, want string
		b          []byte
	}{
		{"empty", "too short", nil},
		{"short", "too short", []byte{0, 0, 0, 1}},
		{"round 0", "round 0", frame(0, 1, v4)},
		{"round too high", "round 9", frame(maxUpgradeRounds+1, 1, v4)},
		{"round huge", "round 4294967295", frame(^uint32(0), 1, v4)},
		{"no candidates", "0 candidates", frame(1, 0)},
		{"too many", "9 candidates", frame(1, 9, v4, v4, v4, v4, v4, v4, v4, v4, v4)},
		{"oversized", "at most", append(frame(1, 1, v4), make([]byte, maxCandidatesFrame)...)},
		{"missing entry", "candidate 2 of 2 missing", frame(1, 2, v4)},
		{"bad family", "address family 5", frame(1, 1, []byte{5, 1, 2, 3, 4, 0, 1})},
		{"truncated v4", "candidate 1 truncated", frame(1, 1, v4[:5])},
		{"truncated v6", "candidate 1 truncated", frame(1, 1, append([]byte{6}, make([]byte, 10)...))},
		{"port 0", "port 0", frame(1, 1, []byte{4, 1, 2, 3, 4, 0, 0})},
		{"trailing", "3 bytes after", frame(1, 1, v4, []byte{1, 2, 3})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, err := parseCandidates(c.b)
			if !errors.Is(err, errCandidatesFrame) || !strings.Contains(err.Error(), c.want) || rc.cands != nil {
				t.Fatalf("parse %x: %+v, %v; want an error saying %q", c.b, rc, err, c.want)
			}
		})
	}
	for _, bad := range [][]netip.AddrPort{nil, {{}}, {netip.MustParseAddrPort("1.2.3.4:0")}} {
		if _, err := marshalCandidates(1, bad); !errors.Is(err, errCandidatesFrame) {
			t.Errorf("marshal %v: %v; want an error", bad, err)
		}
	}
	if _, err := marshalCandidates(0, []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5")}); !errors.Is(err, errCandidatesFrame) {
		t.Errorf("marshal round 0: %v; want an error", err)
	}
}

// FuzzParseCandidates: no input panics, and what parses re-encodes to
// the same bytes.
func FuzzParseCandidates(f *testing.F) {
	b, _ := marshalCandidates(2, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:5000"), netip.MustParseAddrPort("[2001:db8::1]:1")})
	f.Add(b)
	f.Add([]byte{0, 0, 0, 1, 1, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := parseCandidates(b)
		if err != nil {
			return
		}
		again, err := marshalCandidates(rc.round, rc.cands)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", rc, err)
		}
		if !bytes.Equal(again, b) {
			// A v4-mapped address sent as family 6 comes back as family 4.
			if rc2, err := parseCandidates(again); err != nil || len(rc2.cands) != len(rc.cands) {
				t.Fatalf("re-encoded %x from %x: %v", again, b, err)
			}
		}
	})
}

// TestUpgradeScreensCandidates: a round's candidates from the peer get
// the session's candidate policy (index 0 is the observed one) and may
// only name hosts the rendezvous named for the peer.
func TestUpgradeScreensCandidates(t *testing.T) {
	peerPublic := netip.MustParseAddrPort("203.0.113.20:4000")
	u := &upgrader{
		policy: policyFor("198.51.100.1:3478", netip.MustParseAddrPort("203.0.113.10:5000"), []netip.AddrPort{peerPublic}),
		hosts:  map[netip.Addr]bool{peerPublic.Addr(): true, netip.MustParseAddr("10.0.2.10"): true},
		log:    slog.New(slog.DiscardHandler),
	}
	got := u.screen([]netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.20:4100"), // the peer's host, a new port: dialed
		netip.MustParseAddrPort("10.0.2.10:4100"),    // its LAN, but not behind our NAT: withheld by the policy
		netip.MustParseAddrPort("198.51.100.9:80"),   // a host the rendezvous never named: withheld
		netip.MustParseAddrPort("127.0.0.1:22"),      // loopback: withheld
	})
	if len(got) != 1 || got[0] != netip.MustParseAddrPort("203.0.113.20:4100") {
		t.Fatalf("screened %v, want only the peer's host on its new port", got)
	}
}
