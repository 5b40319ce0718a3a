package natlab

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// tcpFrame builds an Ethernet/IPv4/TCP frame with payload at seq, with
// Ethernet padding after the IP packet when pad is set.
func tcpFrame(src, dst netip.AddrPort, seq uint32, payload string, pad bool) frame {
	b := make([]byte, 14, 14+40+len(payload)+8)
	binary.BigEndian.PutUint16(b[12:], etherTypeIPv4)
	ip := make([]byte, 20)
	ip[0], ip[9] = 0x45, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	b = append(append(append(b, ip...), tcp...), payload...)
	if pad {
		b = append(b, "PADDING!"...)
	}
	return frame{at: time.Unix(1, 0), origLen: len(b), data: b}
}

func TestContainsReassembles(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.1.10:4000")
	b := netip.MustParseAddrPort("203.0.113.2:3478")
	var base uint32 = 0xfffffff0 // the stream wraps the sequence space
	c := &Capture{frames: []frame{
		tcpFrame(a, b, base+10, "-marker", false), // out of order
		tcpFrame(a, b, base, "xxxxsecret", true),
		tcpFrame(a, b, base+4, "secr", false), // a retransmit, overlapping
		tcpFrame(b, a, 77, "reply", false),
		tcpFrame(a, b, base+30, "tail", false), // after a hole
		tcpFrame(b, a, 82, "mar", false),       // the other direction
		tcpFrame(a, b, base+17, "12", false),
	}}
	for _, want := range []string{"secret-marker12", "reply", "xxxxsecret", "tail"} {
		if !c.Contains([]byte(want)) {
			t.Errorf("Contains(%q) = false", want)
		}
	}
	if c.Contains([]byte("secret-marker12tail")) {
		t.Error("matched across a hole in the stream")
	}
	if !c.Contains([]byte("replymar")) {
		t.Error("two contiguous segments of one direction were not joined")
	}
	if c.Contains([]byte("12mar")) || c.Contains([]byte("markerreply")) {
		t.Error("matched across the two directions")
	}
	if c.Contains([]byte("PADDING!-marker")) {
		t.Error("Ethernet padding was taken for payload")
	}
	if !c.Contains([]byte("PADDING")) {
		t.Error("bytes of a frame outside any payload were not found (Contains searches whole frames too)")
	}
	if c.Contains(nil) {
		t.Error("an empty marker is contained")
	}
}

func TestPcapHeader(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.1.10:4000")
	f := tcpFrame(a, a, 1, "x", false)
	f.at = time.Unix(1700000000, 123456789)
	var buf bytes.Buffer
	writePcap(&buf, 65535, []frame{f})
	b := buf.Bytes()
	le := binary.LittleEndian
	if le.Uint32(b) != 0xa1b2c3d4 || le.Uint32(b[16:]) != 65535 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("header % x", b[:24])
	}
	r := b[24:]
	if le.Uint32(r) != 1700000000 || le.Uint32(r[4:]) != 123456 || le.Uint32(r[8:]) != uint32(len(f.data)) || !bytes.Equal(r[16:], f.data) {
		t.Errorf("record % x", r[:16])
	}
}
