package rendezvous

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/pion/stun/v3"
)

// tcpunch's STUN methods. They sit in the Designated Expert range
// (0x800-0xFFF) that IANA has not assigned, so they cannot clash with
// Binding (0x001), TURN (0x003-0x00C) or GOOG-PING (0x080).
const (
	methodRegister stun.Method = 0xC01 // request: hold a name (listener)
	methodConnect  stun.Method = 0xC02 // request: connect to a name (dialer); success = peer info
	methodPeerInfo stun.Method = 0xC03 // indication: a dialer arrived (to the listener)
	methodPing     stun.Method = 0xC04 // request: liveness and RTT, either direction
	methodGoodbye  stun.Method = 0xC05 // indication: the server closes (ERROR-CODE says why)
)

// tcpunch's attributes. 0x7C0x is comprehension-required (RFC 8489 §14:
// an agent that does not know it must reject the request with 420), used
// for what changes a message's meaning. 0xFC0x is comprehension-optional,
// for hints an older peer may ignore. Both blocks are in Designated Expert
// ranges IANA has not assigned.
const (
	attrName       stun.AttrType = 0x7C01 // NAME: UTF-8 name, the server's rule applies
	attrCandidate  stun.AttrType = 0x7C02 // XOR-CANDIDATE: one endpoint, XOR-MAPPED-ADDRESS encoding; repeated
	attrRole       stun.AttrType = 0x7C03 // ROLE: 1 byte, 1 = controlling (dialer), 2 = controlled (listener)
	attrSessionTag stun.AttrType = 0x7C04 // SESSION-TAG: 16 random bytes
	attrOwnerProof stun.AttrType = 0x7C05 // OWNER-PROOF: 32-byte Ed25519 public key || 64-byte signature (ownerproof.go)
	attrTiming     stun.AttrType = 0xFC01 // TIMING: uint32 RTT estimate µs, uint32 start delay µs
)

// Roles on the wire, numbered like punch.Role.
const (
	roleControlling byte = 1
	roleControlled  byte = 2
)

const (
	tagSize    = 16
	familyIPv4 = 0x01
	familyIPv6 = 0x02
	magic      = 0x2112A442
)

var errBadAddress = errors.New("bad address attribute")

// understood lists the comprehension-required attributes this
// implementation processes or knowingly ignores; any other one in the
// 0x0000-0x7FFF range makes a request fail with 420.
func understood(t stun.AttrType) bool {
	switch t {
	case attrName, attrCandidate, attrRole, attrSessionTag,
		attrOwnerProof, attrNonce, attrResume,
		stun.AttrMappedAddress, stun.AttrXORMappedAddress,
		stun.AttrErrorCode, stun.AttrUnknownAttributes,
		// Sent by ICE agents' Binding requests; a server without
		// credentials answers them like any other Binding.
		stun.AttrUsername, stun.AttrMessageIntegrity, stun.AttrMessageIntegritySHA256,
		stun.AttrPriority, stun.AttrUseCandidate:
		return true
	}
	return isReportAttr(t)
}

// appendXORAddr appends the XOR-MAPPED-ADDRESS encoding of a (RFC 8489
// §14.2): XOR with the magic cookie and transaction ID keeps NAT ALGs from
// rewriting addresses they recognise in payloads. An IPv4-mapped IPv6
// address is sent as IPv6: callers unmap what they mean as IPv4.
func appendXORAddr(b []byte, a netip.AddrPort, txid [stun.TransactionIDSize]byte) []byte {
	ip := a.Addr()
	var key [16]byte
	binary.BigEndian.PutUint32(key[:4], magic)
	copy(key[4:], txid[:])
	family := byte(familyIPv4)
	if ip.Is6() {
		family = familyIPv6
	}
	b = append(b, 0, family)
	b = binary.BigEndian.AppendUint16(b, a.Port()^uint16(magic>>16))
	raw := ip.AsSlice()
	for i, v := range raw {
		b = append(b, v^key[i])
	}
	return b
}

// parseXORAddr decodes an XOR-MAPPED-ADDRESS-style value with exact
// lengths: 8 bytes for IPv4, 20 for IPv6.
func parseXORAddr(v []byte, txid [stun.TransactionIDSize]byte) (netip.AddrPort, error) {
	if len(v) != 8 && len(v) != 20 {
		return netip.AddrPort{}, errBadAddress
	}
	var key [16]byte
	binary.BigEndian.PutUint32(key[:4], magic)
	copy(key[4:], txid[:])
	port := binary.BigEndian.Uint16(v[2:4]) ^ uint16(magic>>16)
	switch {
	case v[1] == familyIPv4 && len(v) == 8:
		var ip [4]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(ip), port), nil
	case v[1] == familyIPv6 && len(v) == 20:
		var ip [16]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip), port), nil
	}
	return netip.AddrPort{}, errBadAddress
}

// parsePlainAddr decodes a MAPPED-ADDRESS value (no XOR; old servers).
func parsePlainAddr(v []byte) (netip.AddrPort, error) {
	if len(v) < 4 {
		return netip.AddrPort{}, errBadAddress
	}
	port := binary.BigEndian.Uint16(v[2:4])
	switch {
	case v[1] == familyIPv4 && len(v) == 8:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v[4:8])), port), nil
	case v[1] == familyIPv6 && len(v) == 20:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(v[4:20])), port), nil
	}
	return netip.AddrPort{}, errBadAddress
}

// validCandidate rejects endpoints nobody can dial.
func validCandidate(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.IsValid() && a.Port() != 0 && !ip.IsUnspecified() && !ip.IsMulticast() && ip.Zone() == ""
}
