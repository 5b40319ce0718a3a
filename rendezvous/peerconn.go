package rendezvous

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// peerConn is the server's side of one peer's connection: a listener, a
// dialer, or a plain STUN client that never says which. Its serve loop
// reads and frames requests and hands them to the handlers (handlers.go);
// every write holds wmu and has a write deadline.
type peerConn struct {
	s      *Server
	nc     net.Conn
	remote netip.AddrPort // observed endpoint
	log    *slog.Logger

	wmu  sync.Mutex
	wbuf stun.Message // encoding buffer, guarded by wmu

	mu      sync.Mutex
	role    byte // 0, roleControlled (a listener) or roleControlling (a dialer)
	name    string
	cands   []netip.AddrPort
	class   NATClass // the NAT-CLASS the peer sent in Register or Connect
	dialing bool     // a dial-back of this connection is in flight
	// classReady is closed once an announced class (NAT-CLASS-FOLLOWS) is
	// in, or was given up on (classupdate.go); nil when none was announced.
	classReady chan struct{}
	classIn    bool
	pings      map[[stun.TransactionIDSize]byte]pendingPing
	lastRTT    time.Duration
	ka         *time.Timer
	leg        *relaySession // set once this connection is a relay leg (relay_session.go)

	legReq *message      // a Relay request: the serve loop hands the connection to serveLeg
	gone   bool          // closed: a pairing must not start (cancel.go)
	tag    [tagSize]byte // a dialer's session, once its pairing sent (cancel.go)
	hasTag bool

	auth ownerAuth // owner proofs and the resume token (ownerproof.go)

	closed    chan struct{}
	closeOnce sync.Once
	accepted  time.Time   // for the Tracer's ConnClosed
	reports   reportState // the sessions this connection may report on (report.go)
}

func (c *peerConn) serve() {
	defer c.s.connWG.Done()
	defer c.close()
	cfg := c.s.cfg
	buf := make([]byte, 0, 256)
	// A small read buffer: one read syscall per message instead of three
	// (first byte, rest of the header, body), at 512 bytes per connection
	// (an idle listener holds about 12 KiB in all; BENCHMARKS.md).
	r := bufio.NewReaderSize(c.nc, 512)
	first := true
	for {
		// Waiting for a message may take long (an idle listener), but once
		// its first byte is in, the rest must follow within the read
		// timeout: a client dribbling a header is cut.
		wait := cfg.idleTimeout
		if first {
			wait = cfg.readTimeout
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(wait))
		inMsg := false
		raw, err := readFrame(r, buf, cfg.maxMessage, func() {
			inMsg = true
			_ = c.nc.SetReadDeadline(time.Now().Add(cfg.readTimeout))
		})
		if err != nil {
			c.readFailed(err, first, inMsg)
			return
		}
		first = false
		buf = raw[:0]
		msg, unknown, err := decodeMessage(raw)
		if err != nil {
			c.bad("malformed message", err)
			if t, txid := headerOf(raw); t.Class == stun.ClassRequest {
				_ = c.send(errorResponse(&message{Type: t, TxID: txid}, CodeBadRequest, err.Error()))
			}
			return
		}
		c.handle(msg, unknown)
		if c.legReq != nil {
			c.serveLeg(r, c.legReq)
			return
		}
	}
}

func (c *peerConn) readFailed(err error, first, inMsg bool) {
	var hdrErr *headerError
	switch {
	case errors.Is(err, io.EOF):
		c.log.Debug("connection closed by client")
	case errors.Is(err, os.ErrDeadlineExceeded) && inMsg:
		c.bad("message not completed within the read timeout", nil)
	case errors.Is(err, os.ErrDeadlineExceeded) && first:
		c.bad("no message within the read timeout", nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing connection: idle timeout")
		c.goodbye(CodeIdleTimeout, "idle timeout")
	case errors.As(err, &hdrErr):
		c.bad("unreadable message", err)
		if t, txid := headerOf(hdrErr.hdr[:]); t.Class == stun.ClassRequest {
			_ = c.send(errorResponse(&message{Type: t, TxID: txid}, CodeBadRequest, err.Error()))
		}
	case errors.Is(err, errNotSTUN), errors.Is(err, errMalformed):
		c.bad("not a STUN stream", err)
	case errors.Is(err, net.ErrClosed):
		// closed by the server
	default:
		c.log.Debug("closing connection: read failed", "err", err)
	}
}

// send encodes msg and writes it within the write timeout. A failed write
// closes the connection: a half-written message desynchronises the stream.
func (c *peerConn) send(msg *message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := msg.encode(&c.wbuf); err != nil {
		c.log.Error("encoding message", "type", msg.Type.String(), "err", err)
		return err
	}
	c.traceAnswer(msg.Type, msg.Code)
	return c.writeLocked(c.wbuf.Raw, c.s.cfg.writeTimeout)
}

// sendRaw writes an already encoded message (pairing encodes ahead of the
// timed sends).
func (c *peerConn) sendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.traceRawAnswer(b)
	return c.writeLocked(b, c.s.cfg.writeTimeout)
}

func (c *peerConn) writeLocked(b []byte, timeout time.Duration) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(b); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.s.stats.writeTimeouts.add()
			c.s.badLog.note(c.s.prefixOf(c.remote.Addr()), "write timed out (the client stopped reading)")
		}
		if c.closed != nil {
			go c.close()
		}
		return fmt.Errorf("writing to %v: %w", c.remote, err)
	}
	return nil
}

// goodbye tells the client why the server closes; best effort, briefly.
func (c *peerConn) goodbye(code int, reason string) {
	if s := c.relayLeg(); s != nil {
		s.shutdown() // a relay leg speaks relay frames, not STUN
		return
	}
	msg := &message{Type: stun.NewType(methodGoodbye, stun.ClassIndication), TxID: newTxID(), Code: code, Reason: reason}
	var m stun.Message
	if err := msg.encode(&m); err != nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(goodbyeWriteTimeout))
	_, _ = c.nc.Write(m.Raw)
}

func (c *peerConn) relayLeg() *relaySession {
	if c.closed == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leg
}

func (c *peerConn) close() {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.nc.Close()
		c.mu.Lock()
		name := ""
		if c.role == roleControlled {
			name = c.name
		}
		if c.ka != nil {
			c.ka.Stop()
		}
		c.mu.Unlock()
		if name != "" {
			c.s.reg.release(name, c)
			c.log.Info("listener gone; name freed", "name", name)
		}
		c.s.dialerGone(c)
		c.s.limit.release(c.remote.Addr())
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.traceClosed()
	})
}

// bad counts and logs (aggregated per source, see badLog) a connection
// closed for bad input or a read timeout.
func (c *peerConn) bad(reason string, err error) {
	c.s.stats.badConns.add()
	if err != nil {
		reason += ": " + err.Error()
	}
	c.s.badLog.note(c.s.prefixOf(c.remote.Addr()), reason)
	c.log.Debug("closing connection: " + reason)
}
