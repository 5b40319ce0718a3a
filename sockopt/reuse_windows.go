//go:build windows

package sockopt

import (
	"fmt"
	"syscall"
)

// Windows has no SO_REUSEPORT. Its SO_REUSEADDR alone lets several sockets
// bind one port (with weaker isolation than on Unix: any process of the same
// user may also bind it).
func setReuse(fd uintptr) error {
	if err := syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setting SO_REUSEADDR: %w", err)
	}
	return nil
}
