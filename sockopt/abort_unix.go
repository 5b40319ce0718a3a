//go:build unix

package sockopt

import "golang.org/x/sys/unix"

func setLingerZero(fd uintptr) error {
	return unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}
