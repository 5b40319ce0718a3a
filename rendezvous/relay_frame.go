package rendezvous

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/pion/stun/v3"
)

// The relay. A relay session splices two relay legs: fresh TCP connections
// from the two peers to the server, each opened with a Relay request that
// carries the RELAY-TOKEN both peers got with their peer info and the
// sender's ROLE. After both legs joined, the server answers both with
// success and the legs carry relay frames (docs/PROTOCOL.md, "Relay"):
//
//	offset size
//	0      1     type
//	1      3     length of the payload, big-endian
//	4      n     payload
//
// DATA payloads are spliced by the kernel (splice(2) on Linux) from one leg
// to the other; the server reads only the 4-byte headers. Framing is what
// lets the server end a session for a limit and say why (an END frame) at
// a frame boundary, where a raw stream could only be cut.
const (
	methodRelay stun.Method = 0xC20 // request: join a relay session with a token (a relay leg)

	// RELAY-TOKEN is comprehension-optional: a client that predates the
	// relay must still accept peer info that carries one. A server
	// without relaying answers a Relay request 400 (unknown method).
	attrRelayToken stun.AttrType = 0xFC20
)

// Relay frame types.
const (
	frameData byte = 0x00 // application (end-to-end) bytes, 1..maxRelayFrame
	frameEOF  byte = 0x01 // the sender half-closed; length 0
	// 0x02-0x3F: end-to-end control frames (the path layer), forwarded as
	// is, at most maxRelayControl bytes.
	frameControlMin byte = 0x02
	frameControlMax byte = 0x3F
	frameEnd        byte = 0x40 // server → peer only: the session ends; 2-byte code, UTF-8 reason

	relayHeaderSize = 4
	// maxRelayFrame bounds a DATA payload: 256 KiB. The server's per-frame
	// work (a header read and write, the splice calls, the limits) is the
	// relay's overhead, so frames are large; the 3-byte length would allow
	// 16 MiB, but a frame is also what the server may have to finish
	// before it can send an END.
	maxRelayFrame   = 256 << 10
	maxRelayControl = 4096
	maxEndReason    = 512
)

// Codes of an END frame: why the server ended a relay session.
const (
	RelayCodeProtocol  = 400 // a peer sent a frame the relay does not accept
	RelayCodeIdle      = 408 // nothing crossed the relay for the idle timeout
	RelayCodePeerGone  = 410 // the other peer's leg broke (reset, or cut inside a frame)
	RelayCodeByteLimit = 413 // the session reached its byte limit
	RelayCodeTimeLimit = 440 // the session reached its maximum duration
	RelayCodeShutdown  = 503 // the server is shutting down
)

// RelayToken is the one-time secret that admits a peer's leg to a relay
// session. The server hands the same token to both peers of a pairing, in
// their peer info, when it relays.
type RelayToken [16]byte

// IsZero reports whether t is absent: the server never issues the zero
// token.
func (t RelayToken) IsZero() bool { return t == RelayToken{} }

// String is a short form for logs: it never prints the whole secret.
func (t RelayToken) String() string { return hex.EncodeToString(t[:4]) + "…" }

func newRelayToken() RelayToken {
	for {
		var t RelayToken
		_, _ = rand.Read(t[:])
		if !t.IsZero() {
			return t
		}
	}
}

// Role is a peer's part in a pairing, as the server assigned it; numbered
// like punch.Role.
type Role uint8

const (
	RoleControlling Role = Role(roleControlling) // the dialer
	RoleControlled  Role = Role(roleControlled)  // the listener
)

func (r Role) valid() bool { return r == RoleControlling || r == RoleControlled }

func (r Role) String() string {
	switch r {
	case RoleControlling:
		return "controlling"
	case RoleControlled:
		return "controlled"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// RelayEndedError is how a relay session ended when the server ended it:
// the END frame's code and reason.
type RelayEndedError struct {
	Code   int
	Reason string
}

func (e *RelayEndedError) Error() string {
	return fmt.Sprintf("relay session ended by the server (%d): %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrRelayEnded) hold.
func (e *RelayEndedError) Is(target error) bool { return target == ErrRelayEnded }

var (
	// ErrRelayEnded is matched by a [RelayEndedError]: the server ended
	// the relay session and said why.
	ErrRelayEnded = errors.New("rendezvous: relay session ended by the server")
	// ErrRelayLost: the relay leg broke without an END frame: the server
	// was killed or restarted, or the path to it died.
	ErrRelayLost = errors.New("rendezvous: relay connection lost: the server closed it without saying why (restarted or killed?) or the path to it broke")
	// ErrRelayRefused is matched by the error of [DialRelay] when the
	// server refused the leg; the wrapped *ServerError says why.
	ErrRelayRefused = errors.New("rendezvous: relay refused")
	// errRelayFrame: a frame this side does not accept.
	errRelayFrame = errors.New("bad relay frame")
)

func putRelayHeader(b []byte, typ byte, n int) {
	b[0] = typ
	b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
}

func relayHeader(b []byte) (typ byte, n int) {
	return b[0], int(b[1])<<16 | int(b[2])<<8 | int(b[3])
}

// checkRelayHeader says whether a frame a peer sent is acceptable.
func checkRelayHeader(typ byte, n int) error {
	switch {
	case typ == frameData && n >= 1 && n <= maxRelayFrame:
	case typ == frameEOF && n == 0:
	case typ >= frameControlMin && typ <= frameControlMax && n <= maxRelayControl:
	default:
		return fmt.Errorf("%w: type %#x, length %d", errRelayFrame, typ, n)
	}
	return nil
}

func marshalEnd(code int, reason string) []byte {
	if len(reason) > maxEndReason {
		reason = reason[:maxEndReason]
	}
	for !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	b := make([]byte, relayHeaderSize+2+len(reason))
	putRelayHeader(b, frameEnd, 2+len(reason))
	binary.BigEndian.PutUint16(b[4:], uint16(code))
	copy(b[6:], reason)
	return b
}

func readEnd(r io.Reader, n int) error {
	if n < 2 || n > 2+maxEndReason {
		return fmt.Errorf("%w: END of %d bytes", errRelayFrame, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("reading the relay's END frame: %w", err)
	}
	return &RelayEndedError{Code: int(binary.BigEndian.Uint16(b)), Reason: string(b[2:])}
}
