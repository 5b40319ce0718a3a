package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pion/stun/v3"
)

const headerSize = 20

// errNotSTUN: the bytes cannot be a STUN message (first two bits set or
// wrong magic cookie). The stream cannot be resynchronised: close it.
var errNotSTUN = errors.New("not a STUN message")

// headerError reports a header whose declared length cannot be read as a
// message: over the size cap, or not a multiple of 4. It keeps the header
// so the server can answer a request with 400 before it closes, without
// reading the body.
type headerError struct {
	err error
	hdr [headerSize]byte
}

func (e *headerError) Error() string { return e.err.Error() }
func (e *headerError) Unwrap() error { return e.err }

// errTooLarge: a header declared more than the size cap.
var errTooLarge = errors.New("message too large")

// readFrame reads one STUN message from a stream: the 20-byte header, then
// exactly the length it declares (RFC 8489 §6.2.2: over TCP the header is
// the only framing). Never a fixed-size read, which would cut a long
// message or swallow the start of the next. buf is reused when large enough;
// limit caps the whole message. started, when set, runs after the first
// byte arrives, so the caller can switch from an idle deadline to a
// per-message one.
//
// A clean end of stream before any byte is io.EOF; a cut inside a message
// is io.ErrUnexpectedEOF.
func readFrame(r io.Reader, buf []byte, limit int, started func()) ([]byte, error) {
	if cap(buf) < headerSize {
		buf = make([]byte, headerSize, 512)
	}
	buf = buf[:headerSize]
	if started != nil {
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return nil, err
		}
		started()
		if _, err := io.ReadFull(r, buf[1:]); err != nil {
			return nil, eofIsUnexpected(err)
		}
	} else if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[0]&0xC0 != 0 || binary.BigEndian.Uint32(buf[4:8]) != magic {
		return nil, errNotSTUN
	}
	n := int(binary.BigEndian.Uint16(buf[2:4]))
	if n%4 != 0 {
		// Attributes are padded to 4 bytes, so the length always is too.
		return nil, &headerError{err: fmt.Errorf("%w: length %d is not a multiple of 4", errMalformed, n), hdr: [headerSize]byte(buf)}
	}
	if headerSize+n > limit {
		return nil, &headerError{err: fmt.Errorf("%w: %d bytes exceed the limit of %d", errTooLarge, headerSize+n, limit), hdr: [headerSize]byte(buf)}
	}
	if cap(buf) < headerSize+n {
		nb := make([]byte, headerSize+n)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:headerSize+n]
	if _, err := io.ReadFull(r, buf[headerSize:]); err != nil {
		return nil, eofIsUnexpected(err)
	}
	return buf, nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// headerOf decodes the type and transaction ID of a raw header.
func headerOf(hdr []byte) (stun.MessageType, [stun.TransactionIDSize]byte) {
	var t stun.MessageType
	t.ReadValue(binary.BigEndian.Uint16(hdr[0:2]))
	return t, [stun.TransactionIDSize]byte(hdr[8:headerSize])
}
