//go:build !linux

package sockopt

func kernelState(fd uintptr) (TCPState, error) { return StateOther, ErrNoState }
