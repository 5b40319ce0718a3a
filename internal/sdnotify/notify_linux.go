package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state to the socket named by $NOTIFY_SOCKET: a filesystem
// path, or an abstract socket written with a leading '@'. It reports
// whether a notification was sent; no $NOTIFY_SOCKET is not an error.
func Notify(state string) (sent bool, err error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor an abstract socket (@name)", name)
	}
	// Go writes a leading '@' as the abstract namespace's NUL byte.
	addr := &net.UnixAddr{Name: name, Net: "unixgram"}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return false, fmt.Errorf("sd_notify: connecting to %s: %w", name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: sending %q to %s: %w", state, name, err)
	}
	return true, nil
}
