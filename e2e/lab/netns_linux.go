//go:build linux

package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` bind-mounts named namespaces.
const netnsDir = "/run/netns"

// namePrefix starts every namespace the lab creates, followed by the
// creating process's pid; Sweep relies on both.
const namePrefix = "tpl-"

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
				return fmt.Errorf("lab: saving the thread's namespace: %w", err)
			}
			defer orig.Close()
			target, err := os.Open(filepath.Join(netnsDir, ns))
			if err != nil {
				return fmt.Errorf("lab: opening namespace %s: %w", ns, err)
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread() // still in the original namespace
				return fmt.Errorf("lab: entering namespace %s: %w", ns, err)
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
				return fmt.Errorf("lab: sysctl %s=%s in %s: %w", e[0], e[1], ns, err)
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

// run runs a tool with stdin, logs it, and puts its output into the error.
func (l *Lab) run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	l.cfg.logger.Debug("lab: run", "cmd", name+" "+strings.Join(args, " "), "stdin", stdin, "took", time.Since(start), "err", err)
	if err != nil {
		return fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// ipBatch runs iproute2 commands, one a line, inside ns in a single process.
func (l *Lab) ipBatch(ctx context.Context, ns string, lines ...string) error {
	return l.run(ctx, strings.Join(lines, "\n")+"\n", "ip", "-n", ns, "-batch", "-")
}

// nsRun runs a tool inside ns.
func (l *Lab) nsRun(ctx context.Context, ns, stdin, name string, args ...string) error {
	return l.run(ctx, stdin, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// addNetns creates a named namespace and applies the settings every node
// needs before it gets interfaces: no IPv6 duplicate address detection (an
// address stays unusable for about a second while DAD runs) and loopback up.
func (l *Lab) addNetns(ctx context.Context, ns string) error {
	if err := l.run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return err
	}
	if err := sysctl(ns, [][2]string{
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	}); err != nil {
		return err
	}
	return l.ipBatch(ctx, ns, "link set lo up")
}

// Command returns a command that runs name inside the host's namespace
// (through `ip netns exec`, which also gives it a matching /sys). It runs
// in its own process group; the group is killed when ctx is done and when
// the lab is closed, whichever comes first.
func (n *node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the whole group: a shell script's children must not outlive it
	// and keep the namespace busy.
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	n.lab.track(cmd)
	return cmd
}

func (l *Lab) track(cmd *exec.Cmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, cmd)
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// Setpgid made the pid the group id; exec (ip netns exec execs in
	// place) keeps it.
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// killNetnsProcs kills every process whose network namespace is ns: the
// last resort for children that left their process group. It never kills
// this process (a thread of ours may sit in ns, but a Go thread can not be
// killed alone, and killing the whole process would be wrong).
func killNetnsProcs(ns string) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err != nil {
		return
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "ns/net")); err == nil && link == want {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Sweep deletes namespaces left behind by lab processes that died without
// closing their labs (a killed test binary): those whose name carries the
// pid of a process that no longer exists. Labs of live processes are left
// alone, so it is safe to call while other tests run.
func Sweep(ctx context.Context) error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lab: sweep: %w", err)
	}
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		killNetnsProcs(e.Name())
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("lab: sweep %s: %w: %s", e.Name(), err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}
