//go:build unix

package command

import (
	"os/signal"
	"syscall"
)

// IgnoreSIGPIPE makes a write to a closed stdout (tcpunch dial | head -c 10)
// return EPIPE, which the pipe ends cleanly on, instead of killing the
// process before it can report or close the punched connection.
func IgnoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
