//go:build linux

package natlab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces live, as `ip netns` keeps them, so
// `ip netns exec NAME tcpdump` works on a running lab.
const netnsDir = "/run/netns"

// namePrefix starts every namespace the lab creates, followed by the
// creating process's pid; Sweep relies on both.
const namePrefix = "tpl-"

func nsPath(ns string) string { return filepath.Join(netnsDir, ns) }

// Do runs fn on an OS thread switched into the node's network namespace
// and returns its error. Sockets created by fn (net.Listen, net.Dial,
// sockopt.Dialer ...) belong to that namespace for their whole life and may
// be used from any goroutine afterwards.
//
// fn runs on a goroutine of its own (so the caller's thread never changes
// namespace): do not call t.Fatal in it, and do not start goroutines in it
// that expect to be in the namespace, since only that one thread is. Name
// resolution is not switched either (/etc is shared): use addresses.
func (n *node) Do(fn func() error) error {
	return doIn(n.ns, fn)
}

// doIn runs fn on a fresh goroutine locked to its thread, so the caller's
// thread (which may itself be locked, or be the main thread) never changes
// namespace. The thread is switched back afterwards; if that fails the
// thread stays locked and Go destroys it when the goroutine exits, so no
// other goroutine ever runs in the wrong namespace.
func doIn(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return fmt.Errorf("natlab: saving the thread's namespace: %w", err)
			}
			defer orig.Close()
			target, err := os.Open(nsPath(ns))
			if err != nil {
				return fmt.Errorf("natlab: opening namespace %s: %w", ns, err)
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread() // still in the original namespace
				return fmt.Errorf("natlab: entering namespace %s: %w", ns, err)
			}
			ferr := fn()
			if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
				runtime.UnlockOSThread()
			}
			return ferr
		}()
	}()
	return <-errc
}

// sharedNetnsDir makes /run/netns a shared mount point, as `ip netns add`
// does, so a namespace mounted later is also visible in mount namespaces
// made before it (e.g. by a running `ip netns exec`).
func sharedNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: make it one (a bind mount onto itself).
		if err = unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	return err
}

// createNetns creates the named namespace ns: a new network namespace
// bind-mounted onto /run/netns/ns, as `ip netns add` and netns.NewNamed do.
//
// netns.NewNamed leaves the calling thread inside the new namespace, so it
// runs on a goroutine that locks its thread and exits without unlocking it:
// Go then destroys that thread, and no goroutine can ever be scheduled onto
// a thread in the wrong namespace.
func createNetns(ns string) error {
	if err := sharedNetnsDir(); err != nil {
		return fmt.Errorf("natlab: preparing %s: %w", netnsDir, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.NewNamed(ns)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		// NewNamed may have left the empty mount-point file behind.
		_ = os.Remove(nsPath(ns))
		return fmt.Errorf("natlab: creating namespace %s: %w", ns, err)
	}
	return nil
}

// deleteNetns unmounts and removes the named namespace, as `ip netns del`
// does. The namespace itself goes away once nothing else holds it (the
// lab's processes are killed before this).
func deleteNetns(ns string) error {
	p := nsPath(ns)
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("natlab: deleting namespace %s: %w", ns, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("natlab: deleting namespace %s: %w", ns, err)
	}
	return nil
}

// handle is a rtnetlink handle bound to ns: its socket was opened inside
// the namespace, so every call on it acts there from whatever thread the
// caller is on. The socket is opened on doIn's thread, not by
// netlink.NewHandleAt, which switches the caller's own thread and ignores
// a failure to switch it back.
func handle(ns string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := doIn(ns, func() (err error) {
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("natlab: netlink in namespace %s: %w", ns, err)
		}
		return nil
	})
	return h, err
}

// sysctl writes net.* settings inside ns. /proc/sys/net resolves to the
// namespace of the opening thread, so this needs no helper process.
// Missing keys listed in optional are skipped (bridge-nf-call-* only exist
// once br_netfilter is loaded, and then need turning off).
func sysctl(ns string, kv [][2]string, optional ...string) error {
	return doIn(ns, func() error {
		for _, e := range kv {
			p := "/proc/sys/" + strings.ReplaceAll(e[0], ".", "/")
			err := os.WriteFile(p, []byte(e[1]), 0)
			if errors.Is(err, fs.ErrNotExist) && contains(optional, e[0]) {
				continue
			}
			if err != nil {
				return fmt.Errorf("natlab: sysctl %s=%s in %s: %w", e[0], e[1], ns, err)
			}
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// addNetns creates a named namespace and applies the settings every node
// needs before it gets interfaces: no IPv6 duplicate address detection (an
// address stays unusable for about a second while DAD runs) and loopback
// up. It returns a netlink handle bound to the namespace.
func (l *Lab) addNetns(ns string) (*netlink.Handle, error) {
	if err := createNetns(ns); err != nil {
		return nil, err
	}
	l.cfg.logger.Debug("natlab: namespace created", "ns", ns)
	if err := sysctl(ns, [][2]string{
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	}); err != nil {
		return nil, err
	}
	h, err := handle(ns)
	if err != nil {
		return nil, err
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("natlab: %s: link set lo up: %w", ns, err)
	}
	return h, nil
}
