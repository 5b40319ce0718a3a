package punch

import (
	"fmt"
	"io"
)

// Wire format (all frames start with the 4-byte magic, so anything else on a
// candidate address is recognised at once):
//
//	offset size  HELLO (32 bytes)
//	0      4     magic "TPNH" (0x54 0x50 0x4e 0x48)
//	4      1     version, 1
//	5      1     frame type 0x01 HELLO
//	6      1     flags: 0x01 we dialed (clear: we accepted), 0x02 nominated
//	7      1     role: 1 controlling, 2 controlled
//	8      8     instance id, random per Endpoint
//	16     16    session tag
//
//	offset size  REJECT (7 bytes), sent instead of or after a HELLO, then close
//	0      4     magic
//	4      1     version
//	5      1     frame type 0x02 REJECT
//	6      1     reason code (see rejectReason)
//
//	NOMINATE: one byte 0x4e ('N'), controlling → controlled, after the
//	HELLOs, on a connection whose controlling HELLO was not nominated.
//
// The side that dialed sends its HELLO at once; the side that accepted reads
// the peer's first (its tag picks the Punch), then answers. Each side reads
// exactly the frame sizes above, so bytes the application sends right after
// nomination stay in the socket for the application.
const (
	protoVersion = 1

	frameHello  = 0x01
	frameReject = 0x02

	headerLen = 6
	helloLen  = 32
	rejectLen = 7

	flagDialed    = 0x01
	flagNominated = 0x02

	nominateByte = 'N'
)

var magic = [4]byte{'T', 'P', 'N', 'H'}

type hello struct {
	flags    byte
	role     Role
	instance [8]byte
	tag      [16]byte
}

func (h hello) dialed() bool    { return h.flags&flagDialed != 0 }
func (h hello) nominated() bool { return h.flags&flagNominated != 0 }

func (h hello) marshal() []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, magic[:]...)
	b = append(b, protoVersion, frameHello, h.flags, byte(h.role))
	b = append(b, h.instance[:]...)
	return append(b, h.tag[:]...)
}

// rejectReason tells the peer why its connection was refused.
type rejectReason uint8

const (
	reasonMalformed  rejectReason = 1 // a frame of ours we cannot parse, or impossible flags
	reasonVersion    rejectReason = 2 // unsupported protocol version
	reasonSession    rejectReason = 3 // wrong or unknown session tag (another session, or a stale attempt)
	reasonRole       rejectReason = 4 // both peers hold the same role
	reasonSelf       rejectReason = 5 // the hello carries our own instance id
	reasonNomination rejectReason = 6 // a nomination that breaks the protocol
)

func (r rejectReason) String() string {
	switch r {
	case reasonMalformed:
		return "malformed hello"
	case reasonVersion:
		return "unsupported version"
	case reasonSession:
		return "wrong or unknown session"
	case reasonRole:
		return "same role on both sides"
	case reasonSelf:
		return "connected to itself"
	case reasonNomination:
		return "invalid nomination"
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

func marshalReject(r rejectReason) []byte {
	return append(append(make([]byte, 0, rejectLen), magic[:]...), protoVersion, frameReject, byte(r))
}

// readFrame reads exactly one HELLO or REJECT. A REJECT comes back as a
// *rejectedError, a hello we cannot accept as a *verifyError.
func readFrame(r io.Reader) (hello, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return hello{}, fmt.Errorf("reading hello: %w", err)
	}
	if [4]byte(hdr[:4]) != magic {
		return hello{}, &verifyError{reason: reasonMalformed, detail: fmt.Sprintf("not a tcpunch peer: first bytes %q", hdr[:])}
	}
	// A REJECT is understood whatever its version, so that a peer speaking a
	// newer version can still tell us why it refused.
	if hdr[5] == frameReject {
		var b [rejectLen - headerLen]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return hello{}, fmt.Errorf("reading reject frame: %w", err)
		}
		return hello{}, &rejectedError{reason: rejectReason(b[0])}
	}
	if hdr[4] != protoVersion {
		return hello{}, &verifyError{reason: reasonVersion, reply: true, detail: fmt.Sprintf("peer speaks version %d", hdr[4])}
	}
	if hdr[5] != frameHello {
		return hello{}, &verifyError{reason: reasonMalformed, reply: true, detail: fmt.Sprintf("frame type %#x", hdr[5])}
	}
	var b [helloLen - headerLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return hello{}, fmt.Errorf("reading hello body: %w", err)
	}
	h := hello{flags: b[0], role: Role(b[1])}
	copy(h.instance[:], b[2:10])
	copy(h.tag[:], b[10:26])
	if !h.role.valid() {
		return hello{}, &verifyError{reason: reasonMalformed, reply: true, detail: fmt.Sprintf("role %d", b[1])}
	}
	return h, nil
}
