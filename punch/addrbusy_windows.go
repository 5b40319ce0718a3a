//go:build windows

package punch

import (
	"errors"
	"syscall"
)

const (
	wsaeaddrinuse    syscall.Errno = 10048
	wsaeaddrnotavail syscall.Errno = 10049
)

// isAddrBusy reports a dial refused because our port already has a
// connection to that address: an accepted one, or a leftover dial.
func isAddrBusy(err error) bool {
	return errors.Is(err, wsaeaddrinuse) || errors.Is(err, wsaeaddrnotavail)
}
