//go:build !linux

package sockopt

import "time"

func setRetransmit(fd uintptr, interval time.Duration, syn bool) error {
	return ErrNoRetransmitControl
}

func kernelRTO(fd uintptr) (time.Duration, error) { return 0, ErrNoRetransmitControl }
