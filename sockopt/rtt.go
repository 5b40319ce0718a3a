package sockopt

import (
	"fmt"
	"syscall"
	"time"
)

// ErrNoRTT is returned by [RTT] where the kernel does not expose a
// connection's round-trip time; measure it with a ping instead.
// It matches errors.ErrUnsupported.
var ErrNoRTT error = unsupported("sockopt: kernel round-trip time is not available on this operating system")

// RTT returns the kernel's smoothed round-trip time of the TCP connection c
// (a *net.TCPConn, for instance). It is zero until the kernel has a sample.
func RTT(c syscall.Conn) (time.Duration, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("sockopt: reading RTT: %w", err)
	}
	var rtt time.Duration
	err = control(raw, "reading RTT", func(fd uintptr) (err error) {
		rtt, err = kernelRTT(fd)
		return err
	})
	return rtt, err
}
