//go:build !linux

package sockopt

import "time"

func kernelRTT(fd uintptr) (time.Duration, error) { return 0, ErrNoRTT }
