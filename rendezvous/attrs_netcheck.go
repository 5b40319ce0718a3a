package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"
)

// NAT behaviour discovery (netcheck): the alternate address, the dial-back
// and the class a peer measured. Numbers start at 0xC10 / 0x7C10 / 0xFC10,
// apart from the blocks other features take.
const (
	methodDialBack stun.Method = 0xC10 // request: connect back to me from your alternate address; indication: the dial-back's hello
)

const (
	attrDialNonce  stun.AttrType = 0x7C10 // DIALBACK-NONCE: 16 bytes chosen by the client
	attrDialResult stun.AttrType = 0x7C11 // DIALBACK-RESULT: result byte, zero byte, uint16 ms the dial took
	attrNATClass   stun.AttrType = 0xFC10 // NAT-CLASS: mapping byte, filtering byte, two zero bytes
)

// DialBackNonceSize is the size of a dial-back nonce.
const DialBackNonceSize = 16

// ext holds the decoding state of the netcheck attributes of one message.
type extSeen struct{ other, origin, class, nonce, result bool }

// encodeExt appends the netcheck attributes of msg.
func (msg *message) encodeExt(m *stun.Message) {
	if msg.Other.IsValid() {
		m.Add(stun.AttrOtherAddress, appendPlainAddr(nil, msg.Other))
	}
	if msg.Origin.IsValid() {
		m.Add(stun.AttrResponseOrigin, appendPlainAddr(nil, msg.Origin))
	}
	if msg.HasClass {
		m.Add(attrNATClass, encodeClass(msg.Class))
	}
	if msg.ClassFollows {
		m.Add(attrClassFollows, nil)
	}
	if msg.HasDialNonce {
		m.Add(attrDialNonce, msg.DialNonce[:])
	}
	if msg.DialResult != 0 {
		v := []byte{byte(msg.DialResult), 0}
		m.Add(attrDialResult, binary.BigEndian.AppendUint16(v, uint16(min(msg.DialTook.Milliseconds(), 0xFFFF))))
	}
}

// isExt reports whether t is a netcheck attribute decodeExt handles.
func isExt(t stun.AttrType) bool {
	switch t {
	case stun.AttrOtherAddress, stun.AttrResponseOrigin, attrNATClass, attrClassFollows, attrDialNonce, attrDialResult:
		return true
	}
	return false
}

// decodeExt decodes one netcheck attribute into msg.
func (msg *message) decodeExt(a stun.RawAttribute, seen *extSeen) error {
	once := func(b *bool) error {
		if *b {
			return fmt.Errorf("duplicate %v", a.Type)
		}
		*b = true
		return nil
	}
	var err error
	switch a.Type {
	case stun.AttrOtherAddress:
		if err = once(&seen.other); err == nil {
			msg.Other, err = parsePlainAddr(a.Value)
		}
	case stun.AttrResponseOrigin:
		if err = once(&seen.origin); err == nil {
			msg.Origin, err = parsePlainAddr(a.Value)
		}
	case attrNATClass:
		// Optional: a malformed hint is ignored.
		if !seen.class {
			seen.class = true
			msg.Class, msg.HasClass = decodeClass(a.Value)
		}
	case attrClassFollows:
		msg.ClassFollows = true
	case attrDialNonce:
		if err = once(&seen.nonce); err == nil {
			if len(a.Value) != DialBackNonceSize {
				return errors.New("DIALBACK-NONCE must be 16 bytes")
			}
			copy(msg.DialNonce[:], a.Value)
			msg.HasDialNonce = true
		}
	case attrDialResult:
		if err = once(&seen.result); err == nil {
			if len(a.Value) != 4 || a.Value[0] == 0 || DialBackResult(a.Value[0]) > DialBackUnreachable {
				return errors.New("bad DIALBACK-RESULT")
			}
			msg.DialResult = DialBackResult(a.Value[0])
			msg.DialTook = time.Duration(binary.BigEndian.Uint16(a.Value[2:])) * time.Millisecond
		}
	}
	return err
}

// appendPlainAddr appends the MAPPED-ADDRESS encoding of a (RFC 8489
// §14.1), which OTHER-ADDRESS and RESPONSE-ORIGIN use (RFC 5780 §7.4,
// §7.3): family, port, address, no XOR.
func appendPlainAddr(b []byte, a netip.AddrPort) []byte {
	family := byte(familyIPv4)
	if a.Addr().Is6() {
		family = familyIPv6
	}
	b = append(b, 0, family)
	b = binary.BigEndian.AppendUint16(b, a.Port())
	return append(b, a.Addr().AsSlice()...)
}
