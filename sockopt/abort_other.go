//go:build !unix && !windows

package sockopt

func setLingerZero(fd uintptr) error { return ErrUnsupported }
