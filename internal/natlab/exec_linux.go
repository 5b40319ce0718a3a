//go:build linux

package natlab

// Running programs inside a namespace without `ip netns exec`.
//
// A forked child starts in the network namespace of the thread that forked
// it, but [Host.Command] returns an *exec.Cmd that the caller starts from
// whatever goroutine (and thread) it likes, and os/exec has no hook between
// fork and exec and no SysProcAttr field for setns. So the command re-runs
// this very executable (/proc/self/exe) with a marker argument; this
// package's init function recognises the marker before anything else of
// the program runs, locks its thread, setns(2)s it into the namespace and
// execve(2)s the real program. execve keeps the pid (so process groups,
// signals and exit codes are those of the real program) and the namespace
// of the calling thread, and replaces every other thread of the runtime.
// Joining a network namespace is allowed in a multi-threaded process (only
// mount and user namespaces are not). The cost is one extra exec of this
// binary, a few milliseconds.
//
// Unlike `ip netns exec` nothing else is switched: /sys and /etc/netns are
// those of the caller. Programs that need /sys/class/net of the namespace
// (not tcpunch, nor ss, nft, tcpdump) see the caller's.

import (
	"context"
	"errors"
	"fmt"
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

// execMarker is the argument that tells init to enter a namespace and
// exec. It is Args[1], so Args[0] stays what the caller's tools expect.
const execMarker = "-tcpunch-natlab-netns-exec"

func init() {
	if len(os.Args) >= 4 && os.Args[1] == execMarker {
		execInNetns(os.Args[2], os.Args[3], os.Args[3:])
	}
}

// execInNetns enters the namespace at path and replaces the process with
// prog. It only returns by exiting, with 127 as a shell does for a command
// that could not be run.
func execInNetns(path, prog string, argv []string) {
	runtime.LockOSThread() // setns and execve must happen on one thread
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "natlab: running %s in %s: %s: %v\n", prog, path, what, err)
		os.Exit(127)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail("opening the namespace", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		fail("entering the namespace", err)
	}
	unix.Close(fd)
	bin, err := exec.LookPath(prog)
	if err != nil {
		fail("finding the program", err)
	}
	fail("exec", unix.Exec(bin, argv, os.Environ()))
}

// CommandPrefix is the argv prefix that runs a program inside the node's
// namespace: exec.Command(prefix[0], append(prefix[1:], "prog", "arg")...)
// works like [Host.Command] without its process-group handling. It only
// works in a program that links this package (it re-runs the program
// itself; see exec_linux.go), such as the tcpunch binary and this
// package's importers' tests.
func (n *node) CommandPrefix() []string {
	return []string{"/proc/self/exe", execMarker, nsPath(n.ns)}
}

// Command returns a command that runs name inside the node's namespace. It
// runs in its own process group; the group is killed when ctx is done and
// when the lab is closed, whichever comes first. Args[0] of the returned
// command is this executable, not name; everything else (Stdin, Env,
// Wait, exit codes) is the program's.
func (n *node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	p := n.CommandPrefix()
	cmd := exec.CommandContext(ctx, p[0], append(append(p[1:], name), args...)...)
	if _, err := exec.LookPath(name); err != nil {
		cmd.Err = err // as exec.Command does: Start fails, nothing runs
	}
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

// commandName is what a tracked command runs, for error messages.
func commandName(cmd *exec.Cmd) string {
	if len(cmd.Args) > 3 && cmd.Args[1] == execMarker {
		return strings.Join(cmd.Args[3:], " ")
	}
	return strings.Join(cmd.Args, " ")
}

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// Setpgid made the pid the group id; exec keeps it.
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
	if err := syscall.Stat(nsPath(ns), &st); err != nil {
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
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natlab: sweep: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ctx.Err())...)
		}
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
		if err := deleteNetns(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("natlab: sweep: %w", err))
		}
	}
	return errors.Join(errs...)
}
