//go:build unix

package punch

import (
	"errors"
	"syscall"
)

// isAddrBusy reports a dial refused because our port already has a
// connection to that address: an accepted one, or a leftover dial.
func isAddrBusy(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE)
}
