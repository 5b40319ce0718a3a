//go:build linux

package sockopt

import "golang.org/x/sys/unix"

func delivery(fd uintptr) (DeliveryInfo, error) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return DeliveryInfo{}, err
	}
	outq, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if err != nil {
		return DeliveryInfo{}, err
	}
	// A reset empties the send queue: Unacked 0 must not read as
	// delivered. The pending socket error says so, unless a read or write
	// has taken it already (and reported it). The state cannot: a clean
	// close where the peer closed first also ends in CLOSE (via LAST-ACK).
	soErr, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	return DeliveryInfo{Unacked: outq, BytesAcked: info.Bytes_acked, Reset: soErr != 0}, nil
}
