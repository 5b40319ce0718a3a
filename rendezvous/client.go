package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tcpunch/tcpunch/sockopt"
)

// PeerInfo is what the rendezvous tells a peer about the other.
type PeerInfo struct {
	Name        string
	Candidates  []netip.AddrPort // the peer's: observed public endpoint first, then its host candidates
	Observed    netip.AddrPort   // our own endpoint as the server saw it
	Controlling bool             // true for the dialer
	Tag         [16]byte
	// RelayToken admits our leg to the server's relay for this pairing
	// ([DialRelay]); zero when the server does not relay.
	RelayToken RelayToken
	// Class is the peer's NAT class as it measured it (NAT-CLASS; "not
	// measured" when it sent none), LocalClass ours as we sent it
	// ([WithNATCheck]).
	Class, LocalClass NATClass
}

func peerInfoFrom(msg *message, wantRole byte) (PeerInfo, error) {
	if !msg.HasTag || msg.Role != wantRole || len(msg.Candidates) == 0 {
		return PeerInfo{}, fmt.Errorf("%w: peer info lacks a tag, the expected role or candidates", errMalformed)
	}
	return PeerInfo{
		Name:        msg.Name,
		Candidates:  msg.Candidates,
		Observed:    msg.Mapped,
		Controlling: msg.Role == roleControlling,
		Tag:         msg.Tag,
		RelayToken:  msg.RelayToken,
		Class:       msg.Class,
	}, nil
}

// checkWireName rejects what no server could accept; the server applies
// its own, stricter rule.
func checkWireName(name string) error {
	if len(name) == 0 || len(name) > 255 {
		return fmt.Errorf("rendezvous: name must be 1 to 255 bytes, got %d", len(name))
	}
	return nil
}

// controlConn is a client's control connection to the server. A reader
// goroutine answers the server's pings and hands every other message to the
// owner through in; a keepalive goroutine pings the server so a dead one is
// noticed.
type controlConn struct {
	nc  net.Conn
	cfg *clientConfig
	log *slog.Logger

	wmu  sync.Mutex
	wbuf stun.Message

	in        chan *message
	dead      chan struct{} // closed when the reader stops
	err       error         // why it stopped; read after dead
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the reader, the keepalive and drain; Close waits for them

	// side routes the answers of requests sent beside the main one (the
	// quick check's Binding, quickcheck.go) by transaction ID.
	smu  sync.Mutex
	side map[[stun.TransactionIDSize]byte]chan *message
}

// dialControl connects to server from local, the peer's reused port, so the
// server observes the NAT mapping the punch will use.
func dialControl(ctx context.Context, server string, local netip.AddrPort, cfg *clientConfig) (*controlConn, error) {
	d := sockopt.Dialer(local)
	d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: cfg.keepAlive, Interval: cfg.keepAlive, Count: 3}
	nc, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s from %v: %w", server, local, err)
	}
	c := &controlConn{
		nc: nc, cfg: cfg,
		log:     cfg.log.With("server", server, "local", nc.LocalAddr().String()),
		in:      make(chan *message, 4),
		dead:    make(chan struct{}),
		closing: make(chan struct{}),
	}
	c.wg.Add(2)
	go c.read()
	go c.keepAlive()
	return c, nil
}

func (c *controlConn) read() {
	defer c.wg.Done()
	if c.cfg.goroutineExit != nil {
		defer c.cfg.goroutineExit()
	}
	defer close(c.dead)
	buf := make([]byte, 0, 512)
	for {
		// The server answers our pings, so silence for three keepalive
		// periods means it is gone (crashed, or the path died).
		_ = c.nc.SetReadDeadline(time.Now().Add(3 * c.cfg.keepAlive))
		raw, err := readFrame(c.nc, buf, c.cfg.maxMessage, nil)
		if err != nil {
			c.err = fmt.Errorf("reading from the server: %w", err)
			return
		}
		buf = raw[:0]
		msg, unknown, err := decodeMessage(raw)
		if err != nil {
			c.err = fmt.Errorf("reading from the server: %w", err)
			return
		}
		if len(unknown) > 0 && msg.Type.Class != stun.ClassErrorResponse {
			// RFC 8489 §6.3: indications with unknown required attributes
			// are dropped; for a response we let the waiter fail.
			c.log.Info("message with unknown comprehension-required attributes", "type", msg.Type.String(), "attrs", unknown)
			if msg.Type.Class == stun.ClassIndication {
				continue
			}
			msg.Code, msg.Reason = CodeUnknownAttribute, fmt.Sprintf("server sent unknown attributes %v", unknown)
			msg.Type.Class = stun.ClassErrorResponse
		}
		if msg.Type.Method == methodPing {
			if msg.Type.Class == stun.ClassRequest {
				_ = c.send(&message{Type: stun.NewType(methodPing, stun.ClassSuccessResponse), TxID: msg.TxID})
			}
			continue // an answer to our ping: its arrival reset the deadline
		}
		if ch := c.takeSide(msg); ch != nil {
			ch <- msg // buffered, one answer per request
			continue
		}
		select {
		case c.in <- msg:
		case <-c.closing:
			return
		}
	}
}

// takeSide returns, and forgets, the waiter of msg's transaction, if any.
func (c *controlConn) takeSide(msg *message) chan *message {
	if msg.Type.Class != stun.ClassSuccessResponse && msg.Type.Class != stun.ClassErrorResponse {
		return nil
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	ch := c.side[msg.TxID]
	delete(c.side, msg.TxID)
	return ch
}

// sideRoundTrip is roundTrip for a request sent while another one waits
// on c.in: its answer is routed to it by transaction ID.
func (c *controlConn) sideRoundTrip(ctx context.Context, req *message) (*message, error) {
	ch := make(chan *message, 1)
	c.smu.Lock()
	if c.side == nil {
		c.side = make(map[[stun.TransactionIDSize]byte]chan *message)
	}
	c.side[req.TxID] = ch
	c.smu.Unlock()
	defer func() {
		c.smu.Lock()
		delete(c.side, req.TxID)
		c.smu.Unlock()
	}()
	if err := c.send(req); err != nil {
		return nil, err
	}
	select {
	case msg := <-ch:
		if msg.Type.Class == stun.ClassErrorResponse {
			return nil, msg.serverError()
		}
		return msg, nil
	case <-c.dead:
		if c.err != nil {
			return nil, c.err
		}
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *controlConn) keepAlive() {
	defer c.wg.Done()
	if c.cfg.goroutineExit != nil {
		defer c.cfg.goroutineExit()
	}
	t := time.NewTicker(c.cfg.keepAlive)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := c.send(&message{Type: stun.NewType(methodPing, stun.ClassRequest), TxID: newTxID()}); err != nil {
				return
			}
		case <-c.dead:
			return
		case <-c.closing:
			return
		}
	}
}

func (c *controlConn) send(msg *message) error {
	return c.sendBy(msg, time.Now().Add(c.cfg.requestTimeout))
}

// sendBy writes msg, giving up at deadline.
func (c *controlConn) sendBy(msg *message, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := msg.encode(&c.wbuf); err != nil {
		return fmt.Errorf("encoding %v: %w", msg.Type, err)
	}
	_ = c.nc.SetWriteDeadline(deadline)
	if _, err := c.nc.Write(c.wbuf.Raw); err != nil {
		return fmt.Errorf("writing to the server: %w", err)
	}
	return nil
}

// errGoodbye marks a connection the server closed on purpose.
var errGoodbye = errors.New("server said goodbye")

// roundTrip sends req and waits for its response. A Goodbye on the way
// fails it with the Goodbye's ServerError.
func (c *controlConn) roundTrip(ctx context.Context, req *message) (*message, error) {
	if err := c.send(req); err != nil {
		return nil, err
	}
	for {
		select {
		case msg := <-c.in:
			if resp, err, ok := c.answer(req, msg); ok {
				return resp, err
			}
		case <-c.dead:
			// A server that answers and closes at once (429, Goodbye):
			// the answer may still wait in c.in, and wins over the close.
			for {
				select {
				case msg := <-c.in:
					if resp, err, ok := c.answer(req, msg); ok {
						return resp, err
					}
					continue
				default:
				}
				break
			}
			if c.err != nil {
				return nil, c.err
			}
			return nil, net.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// answer says whether msg answers req (ok), and with what.
func (c *controlConn) answer(req, msg *message) (resp *message, err error, ok bool) {
	if c.refusal(msg) {
		// The listener may refuse us while our Connect is still finishing
		// (its quick NAT check): that must not be lost as unexpected.
		return nil, nil, false
	}
	if msg.Type.Method == methodGoodbye && msg.Type.Class == stun.ClassIndication {
		return nil, fmt.Errorf("%w: %w", errGoodbye, msg.serverError()), true
	}
	if msg.TxID != req.TxID || msg.Type.Method != req.Type.Method || msg.Type.Class == stun.ClassRequest || msg.Type.Class == stun.ClassIndication {
		c.log.Debug("unexpected message ignored", "type", msg.Type.String())
		return nil, nil, false
	}
	if msg.Type.Class == stun.ClassErrorResponse {
		return nil, msg.serverError(), true
	}
	return msg, nil, true
}

// startDrain discards, in a goroutine Close waits for, what the server
// sends (a dialer needs nothing after its peer info) while the reader keeps
// answering pings.
func (c *controlConn) startDrain() {
	c.wg.Add(1)
	go c.drain()
}

func (c *controlConn) drain() {
	defer c.wg.Done()
	if c.cfg.goroutineExit != nil {
		defer c.cfg.goroutineExit()
	}
	for {
		select {
		case msg := <-c.in:
			if c.refusal(msg) {
				continue
			}
			c.log.Debug("message after peer info ignored", "type", msg.Type.String())
		case <-c.dead:
			return
		case <-c.closing:
			return
		}
	}
}

// Close closes the control connection and returns once its goroutines
// have ended, so none outlives it. It resets rather than closes gracefully
// (linger 0): a TIME_WAIT on the 4-tuple would block the next connection
// from this reused port to this server for a minute.
func (c *controlConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closing)
		if tc, ok := c.nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		err = c.nc.Close()
	})
	// Closing the socket ends a blocked read or write at once, and every
	// goroutine selects on closing wherever else it waits.
	c.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("rendezvous: closing control connection: %w", err)
	}
	return nil
}

var _ io.Closer = (*controlConn)(nil)
