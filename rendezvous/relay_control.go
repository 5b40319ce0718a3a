package rendezvous

import "fmt"

// Control frames (types 0x02-0x3F) are end-to-end: the server forwards
// them as is, and they are what a path layer above the relay (punch's
// move of a relayed stream onto a direct path) uses to mark a point in
// the byte stream. Without a handler a RelayConn skips them.

// OnControl makes Read hand every control frame to f, in stream order,
// after all the bytes before it were read. When f returns an error, Read
// returns it (once: the next Read goes on with the bytes after the
// frame). Set it before the first Read.
func (c *RelayConn) OnControl(f func(typ byte, payload []byte) error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.onControl = f
}

// WriteControl sends one control frame, between the DATA frames that
// Write and ReadFrom send, in order. It fails after CloseWrite: the
// server forwards nothing after an EOF frame.
func (c *RelayConn) WriteControl(typ byte, payload []byte) error {
	if typ < frameControlMin || typ > frameControlMax || len(payload) > maxRelayControl {
		return fmt.Errorf("rendezvous: relay: %w: control type %#x, length %d", errRelayFrame, typ, len(payload))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	b := make([]byte, relayHeaderSize+len(payload))
	putRelayHeader(b, typ, len(payload))
	copy(b[relayHeaderSize:], payload)
	n, err := c.tc.Write(b)
	if err != nil && n < len(b) {
		c.wbroken = c.writeFailed(err)
		return c.wbroken
	}
	return nil
}
