package rendezvous

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/pion/stun/v3"
)

// message is the decoded form of every message tcpunch sends or accepts.
// Absent attributes keep their zero values.
type message struct {
	Type       stun.MessageType
	TxID       [stun.TransactionIDSize]byte
	Name       string
	Candidates []netip.AddrPort // XOR-CANDIDATE, in order
	Mapped     netip.AddrPort   // XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
	Role       byte
	Tag        [tagSize]byte
	HasTag     bool
	Code       int // ERROR-CODE; 0 when absent
	Reason     string
	UnknownIn  []stun.AttrType // the UNKNOWN-ATTRIBUTES attribute's list
	RTT        time.Duration   // TIMING
	Delay      time.Duration
	HasTiming  bool
	Software   string
	Fingerprnt bool       // FINGERPRINT present (and valid)
	RelayToken RelayToken // RELAY-TOKEN; zero when absent (relay_frame.go)

	// Owner proofs and resumption (ownerproof.go).
	Nonce      []byte           // NONCE, in a 401
	OwnerProof []byte           // OWNER-PROOF: public key || signature
	Resume     [resumeSize]byte // RESUME-TOKEN
	HasResume  bool

	Report *wireReport // a PunchReport's attributes (report.go); nil when absent

	// NAT behaviour discovery (attrs_netcheck.go).
	Other        netip.AddrPort // OTHER-ADDRESS
	Origin       netip.AddrPort // RESPONSE-ORIGIN
	Class        NATClass       // NAT-CLASS
	HasClass     bool
	ClassFollows bool                    // NAT-CLASS-FOLLOWS (classupdate.go)
	DialNonce    [DialBackNonceSize]byte // DIALBACK-NONCE
	HasDialNonce bool
	DialResult   DialBackResult // DIALBACK-RESULT; 0 when absent
	DialTook     time.Duration
}

var errMalformed = errors.New("malformed message")

func newTxID() [stun.TransactionIDSize]byte {
	var id [stun.TransactionIDSize]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24)
	return id
}

// encode writes msg into m (reusing m.Raw) through pion's encoder.
func (msg *message) encode(m *stun.Message) error {
	m.Reset()
	m.Type = msg.Type
	m.TransactionID = msg.TxID
	m.WriteHeader()
	var scratch [24]byte
	if msg.Mapped.IsValid() {
		m.Add(stun.AttrXORMappedAddress, appendXORAddr(scratch[:0], msg.Mapped, msg.TxID))
	}
	if msg.Name != "" {
		if len(msg.Name) > 0xFFFF {
			return fmt.Errorf("encoding NAME: %w", errMalformed)
		}
		m.Add(attrName, []byte(msg.Name))
	}
	for _, c := range msg.Candidates {
		m.Add(attrCandidate, appendXORAddr(scratch[:0], c, msg.TxID))
	}
	if msg.Role != 0 {
		m.Add(attrRole, []byte{msg.Role})
	}
	if msg.HasTag {
		m.Add(attrSessionTag, msg.Tag[:])
	}
	if msg.Code != 0 {
		if msg.Code < 300 || msg.Code > 699 || len(msg.Reason) > 0xFFFF-4 {
			return fmt.Errorf("encoding ERROR-CODE %d: %w", msg.Code, errMalformed)
		}
		v := make([]byte, 4, 4+len(msg.Reason))
		v[2], v[3] = byte(msg.Code/100), byte(msg.Code%100)
		m.Add(stun.AttrErrorCode, append(v, msg.Reason...))
	}
	if len(msg.UnknownIn) > 0 {
		v := make([]byte, 0, 2*len(msg.UnknownIn))
		for _, t := range msg.UnknownIn {
			v = binary.BigEndian.AppendUint16(v, uint16(t))
		}
		m.Add(stun.AttrUnknownAttributes, v)
	}
	if !msg.RelayToken.IsZero() {
		m.Add(attrRelayToken, msg.RelayToken[:])
	}
	if msg.HasTiming {
		v := binary.BigEndian.AppendUint32(scratch[:0], durMicros(msg.RTT))
		m.Add(attrTiming, binary.BigEndian.AppendUint32(v, durMicros(msg.Delay)))
	}
	msg.encodeOwnerAttrs(m)
	msg.encodeExt(m)
	if msg.Report != nil {
		msg.Report.encode(m)
	}
	if msg.Software != "" {
		m.Add(stun.AttrSoftware, []byte(msg.Software))
	}
	if msg.Fingerprnt {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			return fmt.Errorf("encoding FINGERPRINT: %w", err)
		}
	}
	if m.Length > 0xFFFF {
		return fmt.Errorf("encoding %v: %d bytes: %w", msg.Type, m.Length, errMalformed)
	}
	return nil
}

func durMicros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), 1<<32-1))
}

// decodeMessage decodes one framed message (see readFrame). It returns
// the comprehension-required attributes it did not understand separately:
// what to do about them depends on the message class. Nothing in the
// result aliases raw.
func decodeMessage(raw []byte) (*message, []stun.AttrType, error) {
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if int(m.Length)+20 != len(raw) {
		return nil, nil, fmt.Errorf("%w: length %d for %d bytes", errMalformed, m.Length, len(raw))
	}
	msg := &message{Type: m.Type, TxID: m.TransactionID}
	if m.Type.Value() == 0 {
		return msg, nil, fmt.Errorf("%w: message type 0 is reserved", errMalformed)
	}
	var unknown []stun.AttrType
	var seen [8]bool // single-valued attributes seen, indexed below
	once := func(i int, t stun.AttrType) error {
		if seen[i] {
			return fmt.Errorf("%w: duplicate %v", errMalformed, t)
		}
		seen[i] = true
		return nil
	}
	var plainMapped netip.AddrPort
	var ext extSeen
	for i, a := range m.Attributes {
		var err error
		switch a.Type {
		case stun.AttrXORMappedAddress:
			if err = once(0, a.Type); err == nil {
				msg.Mapped, err = parseXORAddr(a.Value, msg.TxID)
			}
		case stun.AttrMappedAddress:
			if err = once(1, a.Type); err == nil {
				plainMapped, err = parsePlainAddr(a.Value)
			}
		case attrName:
			if err = once(2, a.Type); err == nil {
				if len(a.Value) == 0 || !utf8.Valid(a.Value) {
					err = errors.New("NAME must be non-empty UTF-8")
				}
				msg.Name = string(a.Value)
			}
		case attrCandidate:
			var c netip.AddrPort
			if c, err = parseXORAddr(a.Value, msg.TxID); err == nil {
				msg.Candidates = append(msg.Candidates, c)
			}
		case attrRole:
			if err = once(3, a.Type); err == nil {
				if len(a.Value) != 1 || (a.Value[0] != roleControlling && a.Value[0] != roleControlled) {
					err = errors.New("ROLE must be one byte, 1 or 2")
				}
				if err == nil {
					msg.Role = a.Value[0]
				}
			}
		case attrSessionTag:
			if err = once(4, a.Type); err == nil {
				if len(a.Value) != tagSize {
					err = errors.New("SESSION-TAG must be 16 bytes")
				}
				msg.HasTag = err == nil
				copy(msg.Tag[:], a.Value)
			}
		case stun.AttrErrorCode:
			if err = once(5, a.Type); err == nil {
				v := a.Value
				if len(v) < 4 || v[2] < 3 || v[2] > 6 || v[3] > 99 || !utf8.Valid(v[4:]) {
					err = errors.New("bad ERROR-CODE")
				} else {
					msg.Code, msg.Reason = int(v[2])*100+int(v[3]), string(v[4:])
				}
			}
		case stun.AttrUnknownAttributes:
			if err = once(6, a.Type); err == nil {
				if len(a.Value)%2 != 0 {
					err = errors.New("bad UNKNOWN-ATTRIBUTES length")
				}
				for j := 0; err == nil && j+1 < len(a.Value); j += 2 {
					msg.UnknownIn = append(msg.UnknownIn, stun.AttrType(binary.BigEndian.Uint16(a.Value[j:])))
				}
			}
		case attrTiming:
			// Optional: a malformed hint is ignored, not fatal.
			if len(a.Value) == 8 && !msg.HasTiming {
				msg.HasTiming = true
				msg.RTT = time.Duration(binary.BigEndian.Uint32(a.Value)) * time.Microsecond
				msg.Delay = time.Duration(binary.BigEndian.Uint32(a.Value[4:])) * time.Microsecond
			}
		case attrRelayToken:
			if err = once(7, a.Type); err == nil {
				if len(a.Value) != len(msg.RelayToken) {
					err = errors.New("RELAY-TOKEN must be 16 bytes")
				}
				copy(msg.RelayToken[:], a.Value)
			}
		case attrNonce, attrOwnerProof, attrResume:
			err = msg.decodeOwnerAttr(a)
		case attrPunchPath, attrPunchMethod, attrPunchTime, attrPunchAttempts, attrNATClasses:
			msg.decodeReportAttr(a.Type, a.Value) // a bad report is ignored, not fatal
		case stun.AttrSoftware:
			if utf8.Valid(a.Value) {
				msg.Software = string(a.Value)
			}
		case stun.AttrFingerprint:
			if i != len(m.Attributes)-1 {
				err = errors.New("FINGERPRINT must be the last attribute")
			} else if err = stun.Fingerprint.Check(m); err == nil {
				msg.Fingerprnt = true
			}
		default:
			if isExt(a.Type) {
				err = msg.decodeExt(a, &ext)
				break
			}
			if a.Type.Required() && !understood(a.Type) {
				unknown = append(unknown, a.Type)
			}
		}
		if err != nil {
			return msg, nil, fmt.Errorf("%w: %v: %v", errMalformed, a.Type, err)
		}
	}
	if !msg.Mapped.IsValid() {
		msg.Mapped = plainMapped
	}
	if msg.Report != nil {
		msg.Report.finish(len(raw))
	}
	return msg, unknown, nil
}

// errorResponse builds the error response to req.
func errorResponse(req *message, code int, reason string) *message {
	return &message{
		Type:   stun.NewType(req.Type.Method, stun.ClassErrorResponse),
		TxID:   req.TxID,
		Code:   code,
		Reason: reason,
	}
}

// serverError converts an ERROR-CODE into the client-side error.
func (msg *message) serverError() *ServerError {
	if msg.Code == 0 {
		return &ServerError{Code: CodeServerError, Reason: "error response without ERROR-CODE"}
	}
	return &ServerError{Code: msg.Code, Reason: msg.Reason, nonce: msg.Nonce}
}
