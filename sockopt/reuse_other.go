//go:build !(linux || darwin || ios || freebsd || netbsd || openbsd || dragonfly || windows)

package sockopt

func setReuse(fd uintptr) error { return ErrUnsupported }
