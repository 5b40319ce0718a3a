package natlab

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sort"
)

// Putting captured TCP payload back in order, far enough to search it:
// per direction of each connection, segments sorted by sequence number,
// retransmitted bytes taken once, and a hole (a segment the capture
// missed) splitting the stream in two so nothing is matched across it.

type flowKey struct{ src, dst netip.AddrPort }

type segment struct {
	seq     uint32
	payload []byte
}

// tcpStreams returns the contiguous runs of TCP payload in frames (Ethernet
// frames), per direction of each connection.
func tcpStreams(frames []frame) [][]byte {
	flows := map[flowKey][]segment{}
	var order []flowKey
	for _, f := range frames {
		k, s, ok := parseTCP(f.data)
		if !ok || len(s.payload) == 0 {
			continue
		}
		if _, seen := flows[k]; !seen {
			order = append(order, k)
		}
		flows[k] = append(flows[k], s)
	}
	var out [][]byte
	for _, k := range order {
		out = append(out, reassemble(flows[k])...)
	}
	return out
}

func reassemble(segs []segment) [][]byte {
	base := segs[0].seq
	// Offsets relative to the first segment seen, wrap-safe: a stream in
	// the lab never spans 2 GiB within one capture.
	rel := func(s segment) int64 { return int64(int32(s.seq - base)) }
	sort.SliceStable(segs, func(i, j int) bool { return rel(segs[i]) < rel(segs[j]) })
	var out [][]byte
	var cur bytes.Buffer
	next := rel(segs[0])
	for _, s := range segs {
		start, end := rel(s), rel(s)+int64(len(s.payload))
		switch {
		case start > next: // a hole
			out = append(out, bytes.Clone(cur.Bytes()))
			cur.Reset()
			cur.Write(s.payload)
			next = end
		case end > next:
			cur.Write(s.payload[next-start:])
			next = end
		}
	}
	return append(out, cur.Bytes())
}

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
)

// parseTCP finds the TCP segment in an Ethernet frame: IPv4 (first
// fragments only) or IPv6 with TCP as the first next header. Lengths come
// from the headers where they are set, else from the frame (offloaded
// frames are captured before segmentation, with whatever lengths the
// stack put there).
func parseTCP(b []byte) (flowKey, segment, bool) {
	var k flowKey
	if len(b) < 14 {
		return k, segment{}, false
	}
	et, p := binary.BigEndian.Uint16(b[12:]), b[14:]
	if et == etherTypeVLAN && len(p) >= 4 {
		et, p = binary.BigEndian.Uint16(p[2:]), p[4:]
	}
	var src, dst netip.Addr
	switch et {
	case etherTypeIPv4:
		if len(p) < 20 || p[0]>>4 != 4 || p[9] != 6 {
			return k, segment{}, false
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:]))
		if binary.BigEndian.Uint16(p[6:])&0x1fff != 0 || ihl < 20 || ihl > len(p) {
			return k, segment{}, false
		}
		if total >= ihl && total < len(p) {
			p = p[:total] // drop Ethernet padding
		}
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		p = p[ihl:]
	case etherTypeIPv6:
		if len(p) < 40 || p[0]>>4 != 6 || p[6] != 6 {
			return k, segment{}, false
		}
		if pl := int(binary.BigEndian.Uint16(p[4:])); pl != 0 && 40+pl < len(p) {
			p = p[:40+pl]
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		p = p[40:]
	default:
		return k, segment{}, false
	}
	if len(p) < 20 {
		return k, segment{}, false
	}
	off := int(p[12]>>4) * 4
	if off < 20 || off > len(p) {
		return k, segment{}, false
	}
	k = flowKey{
		src: netip.AddrPortFrom(src, binary.BigEndian.Uint16(p[0:])),
		dst: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(p[2:])),
	}
	return k, segment{seq: binary.BigEndian.Uint32(p[4:]), payload: p[off:]}, true
}
