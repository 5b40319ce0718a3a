//go:build linux

package sockopt

import "golang.org/x/sys/unix"

// The kernel's enum tcp_state (include/net/tcp_states.h).
const (
	linuxEstablished = 1
	linuxSynSent     = 2
	linuxSynRecv     = 3
)

func kernelState(fd uintptr) (TCPState, error) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return StateOther, err
	}
	switch info.State {
	case linuxSynSent:
		return StateSynSent, nil
	case linuxSynRecv:
		return StateSynReceived, nil
	case linuxEstablished:
		return StateEstablished, nil
	}
	return StateOther, nil
}
