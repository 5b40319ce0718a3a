package punch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// The path layer (docs/PROTOCOL.md, "Path layer"). A relayed Conn runs on
// a pathConn: it carries the stream on the relay leg until a direct
// connection to the peer verifies (upgrade.go), then moves it there, make
// before break, with no byte lost, duplicated or reordered, and the layers
// above (the secure link, the application) see one stream throughout.
//
// The move, in stream order on each direction of the relay:
//   - the controlling side, holding a verified direct connection D, sends
//     MOVE (payload: D's session tag) on the relay and from then on
//     writes only to D;
//   - the controlled side reads MOVE after every relayed byte before it,
//     then reads only from D; it sends MOVED on the relay and from then
//     on writes only to D;
//   - the controlling side reads the relay until MOVED, then reads D.
//
// A direction whose EOF frame already went out on the relay is finished:
// it needs no move (the controlling side then sends no MOVE at all, the
// controlled side no MOVED, and the reader takes the relay's EOF as that
// direction's end). Once both directions are off the relay, the leg is
// closed and its fate no longer matters. D carries plain bytes: the
// direct path costs nothing once the move is done.

// Path-layer control frames (relay frame types 0x02-0x3F). MOVE and MOVED
// are markers: the reader switches at them. CANDIDATES (pathctl.go) marks
// nothing. A type this version does not know is skipped, so a later
// version may add frames that older readers pass over.
const (
	frameMove  byte = 0x02 // controlling → controlled: the rest of my bytes are on D; payload: D's session tag
	frameMoved byte = 0x03 // controlled → controlling: the rest of my bytes are on D; no payload
)

// readStallWait bounds how long after the peer's marker the path layer
// waits for the first byte on D to measure the read stall: a peer with
// nothing to send would otherwise hold the upgrade's event back for good.
const readStallWait = 2 * time.Second

// moveWait bounds how long the controlled side waits, after reading MOVE,
// for its own end of D to be handed over by the punch (the controlling
// side returns from the punch one hello earlier).
const moveWait = 15 * time.Second

var errPathMarker = errors.New("punch: path marker")

type pathConn struct {
	relay *rendezvous.RelayConn
	role  Role

	rmu        sync.Mutex // serialises Read
	rd         net.Conn   // reads come from here once the peer's marker was read
	marker     []byte     // set by onControl: the frame just read (type, payload)
	rtag       [16]byte   // controlled: the tag MOVE named
	lastRelay  time.Time  // when the last byte came from the relay
	awaitFirst bool       // the next byte read from rd ends the read stall

	wmu       sync.Mutex
	wd        *net.TCPConn // writes go here once our marker is sent
	wclosed   bool         // CloseWrite was called
	lastWrite time.Time    // our last frame on the relay (pathkeepalive.go)

	mu          sync.Mutex
	d           *net.TCPConn // the verified direct connection, once the upgrade has one
	dtag        [16]byte
	dready      chan struct{} // closed when d is set
	deadR       time.Time
	deadW       time.Time
	sentMark    bool // our direction is off the relay (marker sent)
	readMark    bool // the peer's direction is off the relay (marker read)
	retired     bool
	closed      bool
	closing     chan struct{}
	upgradeWG   sync.WaitGroup
	ep          *Endpoint          // held for the upgrade (endpoint_hold.go); released on Close
	stopUpgrade context.CancelFunc // ends the background punch

	// The move's account (Info.Upgrade, EventUpgraded), under mu.
	relayedAt time.Time
	dMethod   Method // how the upgrade's punch made d
	dRound    int    // the upgrade round that found d
	up        Upgrade
	moving    bool        // the stream began to move: up.At is set
	wDone     bool        // our direction is settled: moved (up.WriteStall set) or ended on the relay
	rDone     bool        // the peer's direction is settled: first byte on D (up.ReadStall), or none to measure
	announced bool        // upgraded was called: Info says direct
	rTimer    *time.Timer // readStallWait after the peer's marker
	upgraded  func(Upgrade)

	// Set by startUpgrade before the Conn is handed out.
	log     *slog.Logger
	onCands func(roundCandidates) // the peer's CANDIDATES; must not block (it runs inside Read)
}

func newPathConn(relay *rendezvous.RelayConn, role Role) *pathConn {
	return newPathConnKeepalive(relay, role, relayKeepalive)
}

// newPathConnKeepalive is newPathConn with KEEPALIVE frames after every of
// silence (0: none).
func newPathConnKeepalive(relay *rendezvous.RelayConn, role Role, every time.Duration) *pathConn {
	now := time.Now()
	c := &pathConn{relay: relay, role: role, dready: make(chan struct{}), closing: make(chan struct{}), relayedAt: now, lastWrite: now}
	relay.OnControl(c.onControl)
	if every > 0 {
		go c.keepAlive(every)
	}
	return c
}

// onControl runs inside the relay's Read, in stream order. Only the
// markers interrupt Read; CANDIDATES goes to the upgrade and every other
// control frame is skipped.
func (c *pathConn) onControl(typ byte, payload []byte) error {
	switch typ {
	case frameMove, frameMoved:
		c.marker = append([]byte{typ}, payload...)
		return errPathMarker
	case frameCandidates:
		rc, err := parseCandidates(payload)
		c.mu.Lock()
		f, log := c.onCands, c.log
		c.mu.Unlock()
		if err != nil {
			// The stream itself is intact: a bad list costs only its round.
			if log != nil {
				log.Debug("upgrade: ignoring the peer's candidates", "err", err)
			}
			return nil
		}
		if f != nil {
			f(rc)
		}
	}
	return nil
}

func (c *pathConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.rd != nil {
			n, err := c.rd.Read(p)
			// A deadline of the application's is no end of the stall.
			if c.awaitFirst && (n > 0 || err != nil && !errors.Is(err, os.ErrDeadlineExceeded)) {
				c.awaitFirst = false
				c.readSettled(time.Since(c.lastRelay), n > 0)
			}
			return n, err
		}
		n, err := c.relay.Read(p)
		if n > 0 {
			c.lastRelay = time.Now()
		}
		if !errors.Is(err, errPathMarker) {
			if err == io.EOF {
				// The peer's direction ended on the relay: nothing of it
				// moves, and no read stall is measured.
				c.readSettled(0, false)
			}
			return n, err
		}
		if err := c.takeMarker(); err != nil {
			return 0, err
		}
	}
}

// takeMarker switches reads to D on the peer's marker.
func (c *pathConn) takeMarker() error {
	typ, payload := c.marker[0], c.marker[1:]
	switch {
	case c.role == RoleControlling && typ == frameMoved && len(payload) == 0:
		c.mu.Lock()
		d := c.d // set before MOVE goes out
		c.mu.Unlock()
		if d == nil {
			return fmt.Errorf("punch: path layer: the peer sent MOVED before we sent MOVE")
		}
		c.rd, c.awaitFirst = d, true
		c.markRead()
		return nil
	case c.role == RoleControlled && typ == frameMove && len(payload) == 16:
		c.moveBegins()
		copy(c.rtag[:], payload)
		d, err := c.waitDirect(c.rtag)
		if err != nil {
			return err
		}
		c.rd, c.awaitFirst = d, true
		c.markRead()
		go c.sendMoved(d)
		return nil
	}
	return fmt.Errorf("punch: path layer: unexpected control frame %#x of %d bytes from the peer", typ, len(payload))
}

// waitDirect waits for the upgrade's direct connection of tag.
func (c *pathConn) waitDirect(tag [16]byte) (*net.TCPConn, error) {
	t := time.NewTimer(moveWait)
	defer t.Stop()
	for {
		c.mu.Lock()
		d, dtag, ready := c.d, c.dtag, c.dready
		c.mu.Unlock()
		if d != nil && dtag == tag {
			return d, nil
		}
		select {
		case <-ready:
			if d != nil { // a stale one was replaced meanwhile; look again
				continue
			}
		case <-c.closing:
			return nil, net.ErrClosed
		case <-t.C:
			return nil, fmt.Errorf("punch: path layer: the peer moved the stream to a direct connection this side did not get within %v", moveWait)
		}
	}
}

// sendMoved is the controlled side's half of the move.
func (c *pathConn) sendMoved(d *net.TCPConn) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	held := time.Now() // from here our writes wait
	if c.wclosed {
		// Our direction ended on the relay (EOF frame): nothing to move.
		c.writeSettled(false, 0)
		c.markSent()
		return
	}
	// A failed write means the relay leg broke; the peer then reads no
	// MOVED and its stream fails as it would have without the upgrade.
	_ = c.relay.WriteControl(frameMoved, nil)
	c.wd = d
	c.writeSettled(true, time.Since(held))
	c.markSent()
}

// sendCandidates sends our CANDIDATES of a round on the relay leg. It
// needs no place in the stream, so it does not wait for Write; it fails
// once the stream began to move or our direction ended on the relay.
func (c *pathConn) sendCandidates(payload []byte) error {
	c.mu.Lock()
	over := c.moving || c.closed
	c.mu.Unlock()
	if over {
		return errors.New("the stream is moving or closed")
	}
	return c.relay.WriteControl(frameCandidates, payload)
}

// offer is the upgrade's verified direct connection d (session tag tag).
// The controlling side moves its direction at once; the controlled side
// keeps d for the peer's MOVE. It reports false when d is not used (it is
// then the caller's to close).
func (c *pathConn) offer(d *net.TCPConn, tag [16]byte, method Method, round int) bool {
	c.mu.Lock()
	if c.closed || c.d != nil {
		c.mu.Unlock()
		return false
	}
	c.dMethod, c.dRound = method, round
	if c.role == RoleControlled {
		c.d, c.dtag = d, tag
		c.applyDeadlinesLocked(d)
		close(c.dready)
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()

	c.wmu.Lock()
	defer c.wmu.Unlock()
	held := time.Now() // from here our writes wait
	if c.wclosed {
		return false // our direction already ended on the relay: no move
	}
	c.mu.Lock()
	c.d, c.dtag = d, tag
	c.applyDeadlinesLocked(d)
	close(c.dready)
	c.mu.Unlock()
	if err := c.relay.WriteControl(frameMove, tag[:]); err != nil {
		// The relay leg broke: the stream fails with it, as it would have
		// without the upgrade (the peer cannot learn where our bytes went).
		c.mu.Lock()
		c.d = nil
		c.mu.Unlock()
		return false
	}
	c.wd = d
	c.moveBegins()
	c.writeSettled(true, time.Since(held))
	c.markSent()
	return true
}

// moveBegins notes when the stream began to move: the controlling side's
// MOVE sent, the controlled side's MOVE read.
func (c *pathConn) moveBegins() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.moving {
		c.moving = true
		c.up.At = time.Now()
		c.up.After = c.up.At.Sub(c.relayedAt)
	}
}

// writeSettled: our direction moved, our writes held for held by the
// move, or (moved false) it had ended on the relay.
func (c *pathConn) writeSettled(moved bool, held time.Duration) {
	c.mu.Lock()
	if !c.wDone {
		c.wDone = true
		if moved {
			c.up.WriteStall = held
		}
	}
	f := c.announceLocked()
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

// readSettled: the first byte of the peer's direction came on D, stall
// after the last one on the relay (measured true), or there is nothing
// to measure (the direction ended, or no byte within readStallWait).
func (c *pathConn) readSettled(stall time.Duration, measured bool) {
	c.mu.Lock()
	if !c.rDone {
		c.rDone = true
		if measured {
			c.up.ReadStall, c.up.ReadStallMeasured = stall, true
		}
		if c.rTimer != nil {
			c.rTimer.Stop()
		}
	}
	f := c.announceLocked()
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

// announceLocked, once the stream moved and both directions are settled,
// makes Info say direct and returns the call of the upgraded hook (to
// run after mu is released).
func (c *pathConn) announceLocked() func() {
	if !c.moving || !c.wDone || !c.rDone || c.announced || c.d == nil {
		return nil
	}
	c.announced = true
	c.up.From, c.up.Round = PathRelay, c.dRound
	up, f := c.up, c.upgraded
	if f == nil {
		return nil
	}
	return func() { f(up) }
}

// upgradeInfo is the move's account and the direct connection's
// endpoints, once the move is announced.
func (c *pathConn) upgradeInfo() (up Upgrade, local, remote netip.AddrPort, method Method, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.announced {
		return Upgrade{}, netip.AddrPort{}, netip.AddrPort{}, 0, false
	}
	return c.up, addrPortOf(c.d.LocalAddr()), addrPortOf(c.d.RemoteAddr()), c.dMethod, true
}

func (c *pathConn) markSent() {
	c.mu.Lock()
	c.sentMark = true
	c.maybeRetireLocked()
	c.mu.Unlock()
}

func (c *pathConn) markRead() {
	c.mu.Lock()
	c.readMark = true
	if !c.rDone && !c.closed {
		c.rTimer = time.AfterFunc(readStallWait, func() { c.readSettled(0, false) })
	}
	c.maybeRetireLocked()
	c.mu.Unlock()
}

// maybeRetireLocked closes the relay leg once neither direction uses it:
// an EOF frame, then a short drain so the close sends no RST.
func (c *pathConn) maybeRetireLocked() {
	if !c.sentMark || !c.readMark || c.retired || c.closed {
		return
	}
	c.retired = true
	relay := c.relay
	go func() {
		_ = relay.CloseWrite()
		_ = relay.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := relay.Read(buf); err != nil && !errors.Is(err, errPathMarker) {
				break
			}
		}
		_ = relay.Close()
	}()
}

func (c *pathConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wd != nil {
		return c.wd.Write(p)
	}
	c.lastWrite = time.Now()
	return c.relay.Write(p)
}

func (c *pathConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wclosed = true
	if c.wd != nil {
		return c.wd.CloseWrite()
	}
	if c.role == RoleControlling && c.stopUpgrade != nil {
		c.stopUpgrade() // no MOVE can follow our EOF frame: punching is moot
	}
	return c.relay.CloseWrite()
}

func (c *pathConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	if c.rTimer != nil {
		c.rTimer.Stop()
	}
	d, ep := c.d, c.ep
	c.mu.Unlock()
	err := c.relay.Close()
	if d != nil {
		err = d.Close()
	}
	c.upgradeWG.Wait()
	if ep != nil {
		ep.release()
	}
	return err
}

func (c *pathConn) LocalAddr() net.Addr  { return c.relay.LocalAddr() }
func (c *pathConn) RemoteAddr() net.Addr { return c.relay.RemoteAddr() }

func (c *pathConn) applyDeadlinesLocked(d *net.TCPConn) {
	_ = d.SetReadDeadline(c.deadR)
	_ = d.SetWriteDeadline(c.deadW)
}

func (c *pathConn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *pathConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadR = t
	d, retired := c.d, c.retired
	c.mu.Unlock()
	if d != nil {
		_ = d.SetReadDeadline(t)
	}
	if retired {
		return nil // the leg is closing on its own deadline
	}
	return c.relay.SetReadDeadline(t)
}

func (c *pathConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadW = t
	d, retired := c.d, c.retired
	c.mu.Unlock()
	if d != nil {
		_ = d.SetWriteDeadline(t)
	}
	if retired {
		return nil // the leg is closing on its own deadline
	}
	return c.relay.SetWriteDeadline(t)
}

var _ stream = (*pathConn)(nil)
var _ io.Reader = (*pathConn)(nil)
