package sdnotify_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/sdnotify"
)

// listen opens a unixgram socket as systemd does for a notify service and
// points $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	c := listen(t, filepath.Join(t.TempDir(), "notify"))
	sent, err := sdnotify.Notify(sdnotify.Ready)
	if err != nil || !sent {
		t.Fatalf("Notify = %v, %v; want sent", sent, err)
	}
	if got := receive(t, c); got != "READY=1" {
		t.Fatalf("received %q, want READY=1", got)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	c := listen(t, fmt.Sprintf("@tcpunch-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if sent, err := sdnotify.Notify(sdnotify.Stopping + "\nSTATUS=draining"); err != nil || !sent {
		t.Fatalf("Notify = %v, %v; want sent", sent, err)
	}
	if got := receive(t, c); got != "STOPPING=1\nSTATUS=draining" {
		t.Fatalf("received %q", got)
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := sdnotify.Notify(sdnotify.Ready); sent || err != nil {
		t.Fatalf("Notify without NOTIFY_SOCKET = %v, %v; want nothing sent, no error", sent, err)
	}
}

func TestNotifyBadSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := sdnotify.Notify(sdnotify.Ready); err == nil {
		t.Fatal("a relative NOTIFY_SOCKET was accepted")
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := sdnotify.Notify(sdnotify.Ready); err == nil || sent {
		t.Fatalf("Notify to a socket nobody listens on = %v, %v; want an error", sent, err)
	}
}
