package punch

import "time"

// KEEPALIVE (docs/PROTOCOL.md, "Path layer"): a control frame with no
// payload that a relayed side sends when its direction has been silent for
// relayKeepalive. The relay server ends a session in which no frame
// crossed for its idle timeout (default 5 min); without these an idle
// relayed ssh prompt would be cut although both peers are alive. A peer
// whose process stops stops sending them, so the idle timeout still
// reclaims a session nobody serves. The reader skips the frame (like
// every control frame it does not know), so it marks no point in the
// stream.
const frameKeepalive byte = 0x05

// relayKeepalive is how long our direction of a relayed stream may stay
// silent before a KEEPALIVE: well under the server's default idle timeout,
// and rare enough to cost nothing (4 bytes every 30 s).
const relayKeepalive = 30 * time.Second

// keepAlive sends KEEPALIVE frames while our direction is on the relay
// and open, until Close. It never writes under a write deadline of the
// application's: a keepalive that timed out would break the stream for
// writes the application never made.
func (c *pathConn) keepAlive(every time.Duration) {
	t := time.NewTicker(every / 4)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		c.mu.Lock()
		deadW := c.deadW
		c.mu.Unlock()
		c.wmu.Lock()
		if c.wd != nil || c.wclosed {
			c.wmu.Unlock()
			return // our direction left the relay or ended: nothing to keep alive
		}
		var err error
		if deadW.IsZero() && time.Since(c.lastWrite) >= every {
			err = c.relay.WriteControl(frameKeepalive, nil)
			c.lastWrite = time.Now()
		}
		c.wmu.Unlock()
		if err != nil {
			return // the leg is broken: the stream's own reads and writes say so
		}
	}
}
