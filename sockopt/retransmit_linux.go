//go:build linux

package sockopt

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// TCP_RTO_MAX_MS (Linux 6.15, include/uapi/linux/tcp.h); x/sys/unix
	// does not carry it yet.
	tcpRTOMaxMS = 44
	// The kernel's TCP_RTO_MAX, the cap a socket starts with.
	defaultRTOMax = 120 * time.Second
	// MAX_TCP_SYNCNT: the most SYN retransmissions a socket may ask for.
	maxSYNCount = 127
)

func setRetransmit(fd uintptr, interval time.Duration, syn bool) error {
	if !syn {
		interval = defaultRTOMax
	}
	if interval > defaultRTOMax {
		interval = defaultRTOMax
	}
	err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, tcpRTOMaxMS, int(interval/time.Millisecond))
	if errors.Is(err, unix.ENOPROTOOPT) {
		return ErrNoRetransmitControl
	}
	if err != nil || !syn {
		return err
	}
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SYNCNT, maxSYNCount)
}

func kernelRTO(fd uintptr) (time.Duration, error) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, err
	}
	return time.Duration(info.Rto) * time.Microsecond, nil
}
