//go:build !linux

package sdnotify

// Notify does nothing outside Linux: there is no systemd to tell.
func Notify(state string) (sent bool, err error) { return false, nil }
