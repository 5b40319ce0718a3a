package rendezvous

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// sampleMessages covers every message tcpunch sends or accepts.
func sampleMessages() map[string]*message {
	tx := func(b byte) [stun.TransactionIDSize]byte {
		var id [stun.TransactionIDSize]byte
		for i := range id {
			id[i] = b + byte(i)
		}
		return id
	}
	var tag [tagSize]byte
	copy(tag[:], "0123456789abcdef")
	return map[string]*message{
		"binding request":      {Type: stun.BindingRequest, TxID: tx(1)},
		"binding request fp":   {Type: stun.BindingRequest, TxID: tx(2), Fingerprnt: true},
		"binding success v4":   {Type: stun.BindingSuccess, TxID: tx(3), Mapped: ap("203.0.113.7:40000"), Software: software},
		"binding success v6":   {Type: stun.BindingSuccess, TxID: tx(4), Mapped: ap("[2001:db8::1]:443"), Fingerprnt: true},
		"binding error 420":    {Type: stun.BindingError, TxID: tx(5), Code: 420, Reason: "Unknown Attribute", UnknownIn: []stun.AttrType{0x7FFF, 0x0003}},
		"register request":     {Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: tx(6), Name: "alice", Candidates: []netip.AddrPort{ap("192.168.1.2:5000"), ap("[fd00::2]:5000")}},
		"register success":     {Type: stun.NewType(methodRegister, stun.ClassSuccessResponse), TxID: tx(7), Name: "alice", Mapped: ap("198.51.100.1:6000")},
		"register error 409":   {Type: stun.NewType(methodRegister, stun.ClassErrorResponse), TxID: tx(8), Code: CodeNameTaken, Reason: `name "alice" is held by another listener`},
		"connect request":      {Type: stun.NewType(methodConnect, stun.ClassRequest), TxID: tx(9), Name: "alice", Candidates: []netip.AddrPort{ap("10.0.0.3:7000")}},
		"connect request bare": {Type: stun.NewType(methodConnect, stun.ClassRequest), TxID: tx(10), Name: "a"},
		"connect success": {Type: stun.NewType(methodConnect, stun.ClassSuccessResponse), TxID: tx(11), Name: "alice",
			Mapped: ap("198.51.100.2:7000"), Candidates: []netip.AddrPort{ap("198.51.100.1:6000"), ap("192.168.1.2:5000")},
			Role: roleControlling, Tag: tag, HasTag: true, HasTiming: true, RTT: 80 * time.Millisecond, Delay: 0},
		"connect error 404": {Type: stun.NewType(methodConnect, stun.ClassErrorResponse), TxID: tx(12), Code: CodeUnknownName, Reason: "no listener"},
		"peer info": {Type: stun.NewType(methodPeerInfo, stun.ClassIndication), TxID: tx(13), Name: "alice",
			Mapped: ap("198.51.100.1:6000"), Candidates: []netip.AddrPort{ap("198.51.100.2:7000"), ap("10.0.0.3:7000")},
			Role: roleControlled, Tag: tag, HasTag: true, HasTiming: true, RTT: 10 * time.Millisecond, Delay: 35 * time.Millisecond},
		"ping request": {Type: stun.NewType(methodPing, stun.ClassRequest), TxID: tx(14)},
		"ping success": {Type: stun.NewType(methodPing, stun.ClassSuccessResponse), TxID: tx(15)},
		"goodbye":      {Type: stun.NewType(methodGoodbye, stun.ClassIndication), TxID: tx(16), Code: CodeShuttingDown, Reason: "server shutting down"},
		"bad request":  {Type: stun.NewType(0x123, stun.ClassErrorResponse), TxID: tx(17), Code: CodeBadRequest, Reason: "unknown method 0x123"},
		// Owner proofs and resumption (ownerproof.go).
		"register error 401": {Type: stun.NewType(methodRegister, stun.ClassErrorResponse), TxID: tx(18), Code: CodeUnauthorized, Reason: "Unauthorized", Nonce: []byte("0123456789abcdef")},
		"connect error 401 nonce 32": {Type: stun.NewType(methodConnect, stun.ClassErrorResponse), TxID: tx(19), Code: CodeUnauthorized, Reason: "Unauthorized",
			Nonce: bytes.Repeat([]byte{0xA5}, maxNonceSize)},
		"register request proven": {Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: tx(20), Name: "pk-" + strings.Repeat("a", 52),
			OwnerProof: bytes.Repeat([]byte{7}, ownerProofSize), Resume: [resumeSize]byte(tag), HasResume: true},
		"register success resume": {Type: stun.NewType(methodRegister, stun.ClassSuccessResponse), TxID: tx(21), Name: "alice", Mapped: ap("198.51.100.1:6000"),
			Resume: [resumeSize]byte(tag), HasResume: true},
	}
}

func encodeForTest(t testing.TB, msg *message) []byte {
	t.Helper()
	b, err := encodeBytes(msg)
	if err != nil {
		t.Fatalf("encode %v: %v", msg.Type, err)
	}
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	for name, want := range sampleMessages() {
		t.Run(name, func(t *testing.T) {
			raw := encodeForTest(t, want)
			if !stun.IsMessage(raw) {
				t.Fatal("not a STUN message by pion's check")
			}
			frame, err := readFrame(bytes.NewReader(raw), nil, maxWireMessageSize, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, unknown, err := decodeMessage(frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(unknown) != 0 {
				t.Errorf("unknown attributes %v", unknown)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
			// pion decodes the same bytes to the same header.
			var pm stun.Message
			if err := stun.Decode(raw, &pm); err != nil {
				t.Fatal(err)
			}
			if pm.Type != want.Type || pm.TransactionID != want.TxID {
				t.Errorf("pion sees %v %x", pm.Type, pm.TransactionID)
			}
		})
	}
}

// Our XOR address encoding is the standard one: pion reads it back.
func TestXORAddrMatchesPion(t *testing.T) {
	for _, a := range []netip.AddrPort{ap("1.2.3.4:5"), ap("[2001:db8::7]:65535"), ap("127.0.0.1:3478")} {
		msg := &message{Type: stun.BindingSuccess, TxID: newTxID(), Mapped: a, Candidates: []netip.AddrPort{a}}
		var pm stun.Message
		if err := stun.Decode(encodeForTest(t, msg), &pm); err != nil {
			t.Fatal(err)
		}
		var x stun.XORMappedAddress
		if err := x.GetFrom(&pm); err != nil {
			t.Fatal(err)
		}
		var y stun.XORMappedAddress
		if err := y.GetFromAs(&pm, attrCandidate); err != nil {
			t.Fatal(err)
		}
		want := net.TCPAddrFromAddrPort(a)
		if !x.IP.Equal(want.IP) || x.Port != want.Port || !y.IP.Equal(want.IP) || y.Port != want.Port {
			t.Errorf("%v: pion decoded %v and %v", a, x, y)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	base := func(attrs ...stun.RawAttribute) []byte {
		m := stun.New()
		m.Type = stun.NewType(methodRegister, stun.ClassRequest)
		m.TransactionID = newTxID()
		m.WriteHeader()
		for _, a := range attrs {
			m.Add(a.Type, a.Value)
		}
		return m.Raw
	}
	cases := map[string][]byte{
		"empty name":         base(stun.RawAttribute{Type: attrName}),
		"duplicate name":     base(stun.RawAttribute{Type: attrName, Value: []byte("a")}, stun.RawAttribute{Type: attrName, Value: []byte("b")}),
		"short candidate":    base(stun.RawAttribute{Type: attrCandidate, Value: []byte{0, 1, 0, 0}}),
		"v6 family, v4 size": base(stun.RawAttribute{Type: attrCandidate, Value: []byte{0, 2, 0, 0, 1, 2, 3, 4}}),
		"role 3":             base(stun.RawAttribute{Type: attrRole, Value: []byte{3}}),
		"short tag":          base(stun.RawAttribute{Type: attrSessionTag, Value: []byte{1, 2}}),
		"error class 7":      base(stun.RawAttribute{Type: stun.AttrErrorCode, Value: []byte{0, 0, 7, 0}}),
		"bad fingerprint":    base(stun.RawAttribute{Type: stun.AttrFingerprint, Value: []byte{1, 2, 3, 4}}),
		"type zero":          func() []byte { b := base(); b[0], b[1] = 0, 0; return b }(),
	}
	for name, raw := range cases {
		if _, _, err := decodeMessage(raw); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
	// Unknown comprehension-required attributes are reported, optional ones ignored.
	_, unknown, err := decodeMessage(base(stun.RawAttribute{Type: 0x7FFE, Value: []byte{1}}, stun.RawAttribute{Type: 0xFFFE, Value: []byte{1}}, stun.RawAttribute{Type: 0x7C0F, Value: []byte{1}}))
	if err != nil || !reflect.DeepEqual(unknown, []stun.AttrType{0x7FFE, 0x7C0F}) {
		t.Errorf("unknown = %v, %v", unknown, err)
	}
}

func TestReadFrame(t *testing.T) {
	long := &message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: string(bytes.Repeat([]byte("n"), 1500))}
	short := sampleMessages()["ping request"]
	var stream bytes.Buffer
	stream.Write(encodeForTest(t, long)) // longer than pion's old fixed 1024-byte read
	stream.Write(encodeForTest(t, short))
	r := bytes.NewReader(stream.Bytes())
	for _, want := range []*message{long, short} {
		raw, err := readFrame(r, nil, maxWireMessageSize, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := decodeMessage(raw)
		if err != nil || got.TxID != want.TxID || got.Name != want.Name {
			t.Fatalf("got %+v, %v", got, err)
		}
	}
	if _, err := readFrame(r, nil, maxWireMessageSize, nil); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}

	ok := encodeForTest(t, short)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), ok...)) }
	cases := map[string]struct {
		in    []byte
		check func(error) bool
	}{
		"bad cookie": {mut(func(b []byte) []byte { b[4] = 0; return b }), func(e error) bool { return errors.Is(e, errNotSTUN) }},
		"top bits":   {mut(func(b []byte) []byte { b[0] |= 0x80; return b }), func(e error) bool { return errors.Is(e, errNotSTUN) }},
		"length not %4": {mut(func(b []byte) []byte { b[3] = 2; return b }), func(e error) bool {
			var he *headerError
			return errors.Is(e, errMalformed) && errors.As(e, &he)
		}},
		"too large": {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 4000); return b }), func(e error) bool {
			var he *headerError
			return errors.Is(e, errTooLarge) && errors.As(e, &he)
		}},
		"cut body":   {mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 8); return b }), func(e error) bool { return e == io.ErrUnexpectedEOF }},
		"cut header": {ok[:7], func(e error) bool { return e == io.ErrUnexpectedEOF }},
	}
	for name, c := range cases {
		_, err := readFrame(bytes.NewReader(c.in), nil, 2048, nil)
		if !c.check(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes through the framing and the decoder:
// nothing may panic, and whatever decodes must survive a re-encode.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := encodeBytes(m)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x7C, 0x02, 0x00, 0x03, 1, 2, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for range 8 {
			raw, err := readFrame(r, buf, 4096, func() {})
			if err != nil {
				return
			}
			buf = raw[:0]
			msg, _, err := decodeMessage(raw)
			if err != nil {
				continue
			}
			again, err := encodeBytes(msg)
			if err != nil {
				t.Fatalf("re-encoding a decoded message: %v (%+v)", err, msg)
			}
			msg2, unknown, err := decodeMessage(again)
			if err != nil || len(unknown) != 0 {
				t.Fatalf("decoding a re-encoded message: %v %v", err, unknown)
			}
			if !reflect.DeepEqual(msg, msg2) {
				t.Fatalf("re-encode changed the message:\n%+v\n%+v", msg, msg2)
			}
		}
	})
}

func BenchmarkEncodePeerInfo(b *testing.B) {
	msg := sampleMessages()["peer info"]
	var m stun.Message
	b.ReportAllocs()
	for b.Loop() {
		if err := msg.encode(&m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePeerInfo(b *testing.B) {
	raw := encodeForTest(b, sampleMessages()["peer info"])
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeMessage(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// The type values docs/PROTOCOL.md lists.
func TestWireTypeValues(t *testing.T) {
	for want, typ := range map[uint16]stun.MessageType{
		0x3001: stun.NewType(methodRegister, stun.ClassRequest),
		0x3101: stun.NewType(methodRegister, stun.ClassSuccessResponse),
		0x3111: stun.NewType(methodRegister, stun.ClassErrorResponse),
		0x3002: stun.NewType(methodConnect, stun.ClassRequest),
		0x3102: stun.NewType(methodConnect, stun.ClassSuccessResponse),
		0x3112: stun.NewType(methodConnect, stun.ClassErrorResponse),
		0x3013: stun.NewType(methodPeerInfo, stun.ClassIndication),
		0x3004: stun.NewType(methodPing, stun.ClassRequest),
		0x3104: stun.NewType(methodPing, stun.ClassSuccessResponse),
		0x3015: stun.NewType(methodGoodbye, stun.ClassIndication),
	} {
		if got := typ.Value(); got != want {
			t.Errorf("%v = %#04x, want %#04x", typ, got, want)
		}
	}
	for _, a := range []stun.AttrType{attrName, attrCandidate, attrRole, attrSessionTag, attrOwnerProof} {
		if !a.Required() {
			t.Errorf("%#x must be comprehension-required", uint16(a))
		}
	}
	if !attrTiming.Optional() {
		t.Error("TIMING must be comprehension-optional")
	}
}
