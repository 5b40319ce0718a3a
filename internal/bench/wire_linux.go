package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// A minimal STUN-over-TCP client for load generation: allocation-free
// encoding of the few messages the benchmarks send, header-framed reads.
// The wire format is docs/PROTOCOL.md's.

const (
	stunMagic = 0x2112A442
	attrName  = 0x7C01

	typeBindingReq  = 0x0001
	typeBindingOK   = 0x0101
	typeRegisterReq = 0x3001
	typeRegisterOK  = 0x3101
	typeConnectReq  = 0x3002
	typeConnectOK   = 0x3102
	typePeerInfo    = 0x3013
	typePingReq     = 0x3004
	typePingOK      = 0x3104
	typeGoodbye     = 0x3015
)

// appendMsg appends a STUN message of type typ with transaction ID tx and,
// when name is not empty, a NAME attribute.
func appendMsg(b []byte, typ uint16, tx [12]byte, name string) []byte {
	var attrs int
	if name != "" {
		attrs = 4 + (len(name)+3)&^3
	}
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(attrs))
	b = binary.BigEndian.AppendUint32(b, stunMagic)
	b = append(b, tx[:]...)
	if name != "" {
		b = binary.BigEndian.AppendUint16(b, attrName)
		b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
		b = append(b, name...)
		for i := len(name); i%4 != 0; i++ {
			b = append(b, 0)
		}
	}
	return b
}

func newTx() (tx [12]byte) {
	binary.LittleEndian.PutUint64(tx[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(tx[8:], rand.Uint32())
	return tx
}

// client is one load-generator connection.
type client struct {
	c   *net.TCPConn
	r   *bufio.Reader
	w   []byte
	hdr [20]byte
}

// srcAddr is the i-th loopback source address of a block: 127.block.x.y.
// Spreading connections over sources keeps each one's ephemeral ports
// (about 28k) from running out, and the server's per-IP cap apart.
func srcAddr(block, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(block), byte(i / 250), byte(i%250 + 1)})
}

func dialClient(ctx context.Context, src netip.Addr, server string, timeout time.Duration) (*client, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: timeout, KeepAlive: -1}
	nc, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	return &client{c: nc.(*net.TCPConn), r: bufio.NewReaderSize(nc, 512), w: make([]byte, 0, 128)}, nil
}

// reset closes with RST, as tcpunch's own clients do: no TIME_WAIT.
func (cl *client) reset() {
	_ = cl.c.SetLinger(0)
	cl.c.Close()
}

// read reads one message and returns its type and transaction ID; the
// attributes are skipped.
func (cl *client) read() (uint16, [12]byte, error) {
	if _, err := io.ReadFull(cl.r, cl.hdr[:]); err != nil {
		return 0, [12]byte{}, err
	}
	if binary.BigEndian.Uint32(cl.hdr[4:8]) != stunMagic {
		return 0, [12]byte{}, errors.New("not STUN")
	}
	if _, err := cl.r.Discard(int(binary.BigEndian.Uint16(cl.hdr[2:4]))); err != nil {
		return 0, [12]byte{}, err
	}
	return binary.BigEndian.Uint16(cl.hdr[0:2]), [12]byte(cl.hdr[8:20]), nil
}

func (cl *client) send(typ uint16, tx [12]byte, name string) error {
	cl.w = appendMsg(cl.w[:0], typ, tx, name)
	_, err := cl.c.Write(cl.w)
	return err
}

// request sends a request and reads until its response, answering the
// server's pings meanwhile. It returns the response's type.
func (cl *client) request(typ uint16, name string) (uint16, error) {
	tx := newTx()
	if err := cl.send(typ, tx, name); err != nil {
		return 0, err
	}
	for {
		t, id, err := cl.read()
		if err != nil {
			return 0, err
		}
		switch {
		case t == typePingReq:
			if err := cl.send(typePingOK, id, ""); err != nil {
				return 0, err
			}
		case t == typeGoodbye:
			return t, errors.New("server said goodbye")
		case id == tx:
			return t, nil
		}
	}
}

// idle answers pings until the connection ends, calling peerInfo for each
// PeerInfo indication.
func (cl *client) idle(peerInfo func()) error {
	for {
		t, id, err := cl.read()
		if err != nil {
			return err
		}
		switch t {
		case typePingReq:
			if err := cl.send(typePingOK, id, ""); err != nil {
				return err
			}
		case typePeerInfo:
			if peerInfo != nil {
				peerInfo()
			}
		case typeGoodbye:
			return errors.New("server said goodbye")
		}
	}
}

// register opens a connection from src and registers name on it.
func register(ctx context.Context, src netip.Addr, server, name string) (*client, error) {
	cl, err := dialClient(ctx, src, server, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = cl.c.SetDeadline(time.Now().Add(15 * time.Second))
	t, err := cl.request(typeRegisterReq, name)
	if err == nil && t != typeRegisterOK {
		err = fmt.Errorf("register %q: response type %#04x", name, t)
	}
	if err != nil {
		cl.reset()
		return nil, err
	}
	_ = cl.c.SetDeadline(time.Time{})
	return cl, nil
}
