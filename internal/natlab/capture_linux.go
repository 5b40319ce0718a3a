//go:build linux

package natlab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// captureRcvbuf is the capture socket's receive buffer: frames wait there
// between the kernel's tap and the reader goroutine, and a burst larger
// than this would be dropped by the kernel (and reported by Stop).
const captureRcvbuf = 8 << 20

// Capture starts capturing every frame, in and out, on the node's access
// link ([Host.Link]: "eth0" or a router's "wan"; see
// [WithCaptureInterface] for another). When it returns, the capture
// socket is bound: every frame from then on is recorded, until ctx is
// done, the capture's duration or size limit is reached, [Capture.Stop]
// is called or the lab closes.
//
// The socket is opened on [Host.Do]'s thread inside the namespace and read
// from an ordinary goroutine (a socket stays in the namespace it was made
// in), so no goroutine is ever left in a lab namespace.
func (n *node) Capture(ctx context.Context, opts ...CaptureOption) (*Capture, error) {
	cfg, err := newCaptureConfig(n.link, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%s: capture on %s", n.name, cfg.iface)
	var fd int = -1
	if err := n.Do(func() error {
		ifi, err := net.InterfaceByName(cfg.iface)
		if err != nil {
			return err
		}
		fd, err = openPacketSocket(ifi.Index)
		return err
	}); err != nil {
		return nil, fmt.Errorf("natlab: %s: %w", what, err)
	}
	// A non-blocking fd makes os.NewFile put it on the netpoller, so
	// deadlines and Close wake the reader.
	f := os.NewFile(uintptr(fd), "packet:"+cfg.iface)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("natlab: %s: %w", what, err)
	}
	c := &Capture{iface: cfg.iface, snaplen: cfg.snaplen, limit: cfg.limit, size: pcapHeaderLen, done: make(chan struct{})}
	stopping := make(chan struct{})
	var once sync.Once
	c.stop = func() {
		once.Do(func() {
			close(stopping)
			f.SetReadDeadline(time.Unix(1, 0)) // wake the reader now
		})
	}
	l := n.lab
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		f.Close()
		return nil, ErrClosed
	}
	l.captures = append(l.captures, c)
	l.mu.Unlock()

	f.SetReadDeadline(time.Now().Add(cfg.duration))
	go func() {
		defer close(c.done)
		defer f.Close()
		err := c.read(rc, cfg.snaplen)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Stopped (or out of time): take in what the kernel already
			// queued, without waiting for more.
			err = c.drain(rc, cfg.snaplen)
		}
		if err == nil {
			err = packetDrops(rc)
		}
		c.finish(err)
	}()
	go func() {
		select {
		case <-ctx.Done():
			c.stop()
		case <-stopping:
		case <-c.done:
		}
	}()
	return c, nil
}

// openPacketSocket opens a non-blocking AF_PACKET socket for every
// protocol, bound to the interface ifindex of the calling thread's
// namespace, with kernel timestamps.
func openPacketSocket(ifindex int) (int, error) {
	// Protocol 0 receives nothing until bind names the protocol and the
	// interface, so no frame of another interface gets in before.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	for _, o := range []struct {
		level, name, v int
		what           string
	}{
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, captureRcvbuf, "SO_RCVBUFFORCE"},
		{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.v); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt %s: %w", o.what, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind to ifindex %d: %w", ifindex, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read records frames until an error: the deadline (stop, duration), a
// full capture (nil) or a socket error.
func (c *Capture) read(rc interface {
	Read(func(uintptr) bool) error
}, snaplen int) error {
	buf := make([]byte, snaplen)
	oob := make([]byte, unix.CmsgSpace(16))
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("recvmsg: %w", rerr)
		}
		if !c.add(frameTime(oob[:oobn]), buf[:min(n, snaplen)], n) {
			return nil
		}
	}
}

// drain records what is queued on the socket without waiting.
func (c *Capture) drain(rc interface {
	Control(func(uintptr)) error
}, snaplen int) error {
	buf := make([]byte, snaplen)
	oob := make([]byte, unix.CmsgSpace(16))
	var derr error
	err := rc.Control(func(fd uintptr) {
		for {
			n, oobn, _, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
			if err == unix.EAGAIN {
				return
			}
			if err != nil {
				derr = fmt.Errorf("recvmsg: %w", err)
				return
			}
			if !c.add(frameTime(oob[:oobn]), buf[:min(n, snaplen)], n) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return derr
}

// packetDrops is an error if the kernel dropped frames for want of
// buffer space: a capture with holes cannot prove what was not sent.
func packetDrops(rc interface {
	Control(func(uintptr)) error
}) error {
	var st *unix.TpacketStats
	var serr error
	if err := rc.Control(func(fd uintptr) {
		st, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("PACKET_STATISTICS: %w", serr)
	}
	if st.Drops > 0 {
		return fmt.Errorf("the kernel dropped %d of %d frames (receive buffer full): the capture has holes", st.Drops, st.Packets)
	}
	return nil
}

// frameTime is the kernel's receive timestamp (SCM_TIMESTAMPNS), or now.
func frameTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}
