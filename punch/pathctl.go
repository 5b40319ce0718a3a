package punch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// CANDIDATES (docs/PROTOCOL.md, "Path layer"): a peer's endpoints on a
// fresh local port, for a new round of the upgrade's punching when the
// session's own 4-tuples stay stuck (upgrade.go). Sent on the relay leg
// by each side once per round; it marks no point in the stream, so the
// reader takes it wherever it comes and Read goes on.
//
//	offset size
//	0      4    round, big-endian, 1..maxUpgradeRounds
//	4      1    count n, 1..maxRoundCandidates
//	5      ...  n entries: family (4 or 6), the address (4 or 16 bytes),
//	            the port (2 bytes, big-endian, not 0)
//
// The first entry is the new port's public mapping as the rendezvous
// server observed it (a STUN Binding from that port); the rest are host
// candidates on the same port.
const (
	frameCandidates byte = 0x04

	// maxRoundCandidates bounds one round's list: the observed endpoint
	// and a few host addresses. More would only buy a peer (or a hostile
	// relay) SYNs at more addresses.
	maxRoundCandidates = 8
	// maxCandidatesFrame is the longest valid payload: 5 + 8 × 19.
	maxCandidatesFrame = 5 + maxRoundCandidates*(1+16+2)
)

// errCandidatesFrame is matched by every decoding failure of a CANDIDATES
// payload.
var errCandidatesFrame = errors.New("punch: path layer: bad CANDIDATES frame")

// roundCandidates is a decoded CANDIDATES frame.
type roundCandidates struct {
	round int
	cands []netip.AddrPort
}

func marshalCandidates(round int, cands []netip.AddrPort) ([]byte, error) {
	if round < 1 || round > maxUpgradeRounds {
		return nil, fmt.Errorf("%w: round %d outside 1..%d", errCandidatesFrame, round, maxUpgradeRounds)
	}
	if len(cands) == 0 || len(cands) > maxRoundCandidates {
		return nil, fmt.Errorf("%w: %d candidates (want 1..%d)", errCandidatesFrame, len(cands), maxRoundCandidates)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, maxCandidatesFrame), uint32(round))
	b = append(b, byte(len(cands)))
	for _, a := range cands {
		a = unmap(a)
		if !a.IsValid() || a.Port() == 0 {
			return nil, fmt.Errorf("%w: candidate %v is not an address and port", errCandidatesFrame, a)
		}
		if a.Addr().Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, a.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, a.Port())
	}
	return b, nil
}

// parseCandidates decodes a CANDIDATES payload; its errors match
// errCandidatesFrame and say what is wrong.
func parseCandidates(b []byte) (roundCandidates, error) {
	if len(b) > maxCandidatesFrame {
		return roundCandidates{}, fmt.Errorf("%w: %d bytes, at most %d", errCandidatesFrame, len(b), maxCandidatesFrame)
	}
	if len(b) < 5 {
		return roundCandidates{}, fmt.Errorf("%w: %d bytes, too short for the round and count", errCandidatesFrame, len(b))
	}
	round := binary.BigEndian.Uint32(b)
	if round < 1 || round > maxUpgradeRounds {
		return roundCandidates{}, fmt.Errorf("%w: round %d outside 1..%d", errCandidatesFrame, round, maxUpgradeRounds)
	}
	n := int(b[4])
	if n < 1 || n > maxRoundCandidates {
		return roundCandidates{}, fmt.Errorf("%w: %d candidates (want 1..%d)", errCandidatesFrame, n, maxRoundCandidates)
	}
	rc := roundCandidates{round: int(round), cands: make([]netip.AddrPort, 0, n)}
	rest := b[5:]
	for i := range n {
		if len(rest) < 1 {
			return roundCandidates{}, fmt.Errorf("%w: candidate %d of %d missing", errCandidatesFrame, i+1, n)
		}
		var size int
		switch rest[0] {
		case 4:
			size = 4
		case 6:
			size = 16
		default:
			return roundCandidates{}, fmt.Errorf("%w: candidate %d: address family %d (want 4 or 6)", errCandidatesFrame, i+1, rest[0])
		}
		if len(rest) < 1+size+2 {
			return roundCandidates{}, fmt.Errorf("%w: candidate %d truncated", errCandidatesFrame, i+1)
		}
		addr, _ := netip.AddrFromSlice(rest[1 : 1+size])
		port := binary.BigEndian.Uint16(rest[1+size:])
		if port == 0 {
			return roundCandidates{}, fmt.Errorf("%w: candidate %d: port 0", errCandidatesFrame, i+1)
		}
		rc.cands = append(rc.cands, unmap(netip.AddrPortFrom(addr, port)))
		rest = rest[1+size+2:]
	}
	if len(rest) != 0 {
		return roundCandidates{}, fmt.Errorf("%w: %d bytes after the %d candidates", errCandidatesFrame, len(rest), n)
	}
	return rc, nil
}
