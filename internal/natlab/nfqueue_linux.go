//go:build linux

package natlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// A minimal netfilter-queue client over raw netlink: just enough to bind a
// queue, receive packet ids and return verdicts. Constants are from
// linux/netfilter/nfnetlink_queue.h (x/sys/unix does not carry them).
const (
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1 // in NFQNL_MSG_PACKET: struct nfqnl_msg_packet_hdr
	nfqaVerdictHdr = 2 // in NFQNL_MSG_VERDICT: struct nfqnl_msg_verdict_hdr

	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3

	nfqnlCfgCmdBind = 1
	nfqnlCopyMeta   = 1

	nfAccept = 1
	nfDrop   = 0
)

// nfqueue is a bound queue. Its socket was created inside the namespace
// whose packets it receives and stays tied to it from any thread.
type nfqueue struct {
	f   *os.File // the netlink socket, non-blocking, on Go's poller
	num uint16
	seq atomic.Uint32
}

// openNFQueue binds queue num in the calling thread's namespace (call it
// through doIn). maxLen bounds the packets the kernel holds for us.
//
// Copy mode is metadata only: the stage never looks at payloads, so
// copying them to user space would only cost time; the packet id in the
// header is all a verdict needs.
func openNFQueue(num uint16, maxLen uint32) (*nfqueue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("natlab: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("natlab: netlink bind: %w", err)
	}
	// A deep receive buffer, and no ENOBUFS errors when it overflows
	// anyway: an overflow loses packets (as a full router buffer would),
	// which TCP recovers from; an error would only stop the stage.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	q := &nfqueue{f: os.NewFile(uintptr(fd), "nfqueue"), num: num}

	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0} // command, pad, pf (unused since 3.8)
	if err := q.request(nfqnlMsgConfig, attr(nfqaCfgCmd, cmd)); err != nil {
		q.f.Close()
		return nil, fmt.Errorf("natlab: binding nfqueue %d: %w", num, err)
	}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 0) // copy range: none needed in meta mode
	params[4] = nfqnlCopyMeta
	ml := binary.BigEndian.AppendUint32(nil, maxLen)
	if err := q.request(nfqnlMsgConfig, attr(nfqaCfgParams, params), attr(nfqaCfgQueueMaxlen, ml)); err != nil {
		q.f.Close()
		return nil, fmt.Errorf("natlab: configuring nfqueue %d: %w", num, err)
	}
	return q, nil
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, val []byte) []byte {
	b := make([]byte, 4, 4+len(val)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// message encodes an nfnetlink queue message: nlmsghdr, nfgenmsg, attrs.
func (q *nfqueue) message(msg uint16, flags uint16, attrs ...[]byte) ([]byte, uint32) {
	seq := q.seq.Add(1)
	b := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_QUEUE<<8|msg)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	// nfgenmsg: family AF_UNSPEC, version, queue number (big endian).
	b[unix.NLMSG_HDRLEN] = unix.AF_UNSPEC
	b[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	binary.BigEndian.PutUint16(b[unix.NLMSG_HDRLEN+2:], q.num)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	return b, seq
}

// request sends a message with NLM_F_ACK and waits for the kernel's
// answer. Only used before the rules that feed the queue exist, so no
// packet message can arrive in between.
func (q *nfqueue) request(msg uint16, attrs ...[]byte) error {
	b, seq := q.message(msg, unix.NLM_F_ACK, attrs...)
	if _, err := q.f.Write(b); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := q.f.Read(buf)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != seq || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
	}
}

// verdict accepts or drops packet id.
func (q *nfqueue) verdict(id uint32, v uint32) error {
	vh := make([]byte, 8)
	binary.BigEndian.PutUint32(vh[0:], v)
	binary.BigEndian.PutUint32(vh[4:], id)
	b, _ := q.message(nfqnlMsgVerdict, 0, attr(nfqaVerdictHdr, vh))
	_, err := q.f.Write(b)
	return err
}

// receive reads packet ids until the socket is closed, calling fn for each
// in arrival order. A packet that cannot be parsed has no id to answer and
// is left to the kernel.
func (q *nfqueue) receive(fn func(id uint32)) error {
	buf := make([]byte, 1<<16)
	for {
		n, err := q.f.Read(buf)
		if errors.Is(err, unix.ENOBUFS) {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NFNL_SUBSYS_QUEUE<<8|nfqnlMsgPacket || len(m.Data) < 4 {
				continue
			}
			if id, ok := packetID(m.Data[4:]); ok {
				fn(id)
			}
		}
	}
}

// packetID finds NFQA_PACKET_HDR among the attributes and returns its id.
func packetID(b []byte) (uint32, bool) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff // NLA_TYPE_MASK: without the nested/byte-order flags
		if l < 4 || l > len(b) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(b[4:]), true
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0, false
}

func (q *nfqueue) close() error { return q.f.Close() }
