package confirm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	headerSize = 4
	// MaxPayload is the largest DATA payload a frame carries (and accepts).
	MaxPayload = 64 << 10

	frameData byte = 0x00
	frameFin  byte = 0x01
	frameAck  byte = 0x02

	countSize = 8
)

// ErrProtocol means the peer sent something that is not a valid frame
// sequence; the stream cannot be trusted past it.
var ErrProtocol = errors.New("confirm: protocol violation by the peer")

type header struct {
	typ byte
	n   int
}

func putHeader(b []byte, typ byte, n int) {
	b[0] = typ
	b[1] = byte(n >> 16)
	b[2] = byte(n >> 8)
	b[3] = byte(n)
}

// readHeader reads and checks one header. It never allocates by the
// announced length: DATA is bounded by MaxPayload, control frames are
// exactly 8 bytes.
func readHeader(r io.Reader) (header, error) {
	var b [headerSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, err
	}
	h := header{typ: b[0], n: int(b[1])<<16 | int(b[2])<<8 | int(b[3])}
	switch h.typ {
	case frameData:
		if h.n == 0 || h.n > MaxPayload {
			return header{}, fmt.Errorf("%w: DATA frame of %d bytes", ErrProtocol, h.n)
		}
	case frameFin, frameAck:
		if h.n != countSize {
			return header{}, fmt.Errorf("%w: control frame 0x%02x of %d bytes", ErrProtocol, h.typ, h.n)
		}
	default:
		return header{}, fmt.Errorf("%w: unknown frame type 0x%02x", ErrProtocol, h.typ)
	}
	return h, nil
}

func readCount(r io.Reader) (uint64, error) {
	var b [countSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

func controlFrame(typ byte, count uint64) []byte {
	b := make([]byte, headerSize+countSize)
	putHeader(b, typ, countSize)
	binary.BigEndian.PutUint64(b[headerSize:], count)
	return b
}
