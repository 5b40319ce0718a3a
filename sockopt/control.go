package sockopt

import (
	"fmt"
	"syscall"
)

// control runs f on c's descriptor and wraps either error with what was
// being done.
func control(c syscall.RawConn, doing string, f func(fd uintptr) error) error {
	var sockErr error
	if err := c.Control(func(fd uintptr) { sockErr = f(fd) }); err != nil {
		return fmt.Errorf("sockopt: %s: %w", doing, err)
	}
	if sockErr != nil {
		return fmt.Errorf("sockopt: %s: %w", doing, sockErr)
	}
	return nil
}
