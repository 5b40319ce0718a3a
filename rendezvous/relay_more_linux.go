package rendezvous

import (
	"net"

	"golang.org/x/sys/unix"
)

// writeHeaderMore writes a frame header that the splice of its payload
// follows at once, with MSG_MORE: the kernel holds the 4 bytes until the
// payload joins them, instead of sending a segment of its own (the legs
// have TCP_NODELAY, as Go sets it). One syscall, like a plain write.
func writeHeaderMore(tc *net.TCPConn, hdr []byte) error {
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var serr error
	err = raw.Write(func(fd uintptr) bool {
		for n < len(hdr) {
			var m int
			m, serr = unix.SendmsgN(int(fd), hdr[n:], nil, nil, unix.MSG_MORE|unix.MSG_NOSIGNAL)
			if serr == unix.EAGAIN {
				return false // wait until writable
			}
			if serr == unix.EINTR {
				continue
			}
			if serr != nil {
				return true
			}
			n += m
		}
		return true
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return &net.OpError{Op: "write", Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(), Err: serr}
	}
	return nil
}
