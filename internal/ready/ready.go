// Package ready is the readiness handshake between a tcpunch process and the
// program that started it (the demo, the benchmarks, the end-to-end tests,
// or a supervisor script): `--ready-fd N`, or TCPUNCH_READY_FD=N.
//
// A process given a descriptor writes one line to it when it is ready, the
// address it bound, and closes it: `tcpunch serve` once it listens (the
// listening address), `tcpunch listen` once its name is registered (its
// local endpoint, the reused port). The starting program reads that line
// instead of matching log lines, which are for people and may change.
// End of file before the line means the process exited without becoming
// ready.
//
// Both ends live here, so they cannot drift apart: [Notify] in the process,
// [Attach] and [Waiter.Wait] in the program that starts it.
package ready

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// EnvVar names the descriptor as the --ready-fd flag does.
const EnvVar = "TCPUNCH_READY_FD"

// Notify writes addr and a newline to descriptor fd and closes it (fd 1 and
// 2, stdout and stderr, stay open). fd 0 means nobody asked: Notify does
// nothing. It also removes EnvVar from the environment, so that children
// (--exec) do not take the descriptor number for theirs.
func Notify(fd int, addr string) error {
	if fd == 0 {
		return nil
	}
	os.Unsetenv(EnvVar)
	if fd < 0 {
		return fmt.Errorf("--ready-fd %d: not a file descriptor", fd)
	}
	f := os.NewFile(uintptr(fd), "ready-fd")
	if f == nil {
		return fmt.Errorf("--ready-fd %d: not a file descriptor", fd)
	}
	_, err := io.WriteString(f, addr+"\n")
	if fd > 2 {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("--ready-fd %d: telling the starting program we are ready: %w", fd, err)
	}
	return nil
}

// Waiter is the starting program's end of the handshake for one process.
type Waiter struct {
	r, w      *os.File
	closeOnce sync.Once
}

// Attach gives cmd, before it starts, a pipe for the ready line: the write
// end as an extra descriptor, named to the process by EnvVar in its
// environment. Call [Waiter.Wait] once cmd has started.
func Attach(cmd *exec.Cmd) (*Waiter, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making the ready pipe: %w", err)
	}
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.Env = append(cmd.Environ(), EnvVar+"="+strconv.Itoa(fd))
	return &Waiter{r: r, w: w}, nil
}

// ErrExited is returned by Wait when the process closed the descriptor, by
// exiting or otherwise, without saying it was ready.
var ErrExited = errors.New("exited before it was ready")

// Wait returns the address the process wrote once ready. It returns
// ErrExited if the process ends first, and ctx's error if ctx ends first.
// Wait may be called once, after cmd.Start (or after it failed).
func (w *Waiter) Wait(ctx context.Context) (string, error) {
	w.w.Close() // the child holds its own copy now; ours would hide its exit
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	line, err := bufio.NewReader(w.r).ReadString('\n')
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case err == io.EOF && line == "":
		return "", ErrExited
	case err != nil && err != io.EOF:
		return "", fmt.Errorf("reading the ready line: %w", err)
	}
	addr := strings.TrimSpace(line)
	if addr == "" {
		return "", errors.New("the ready line is empty")
	}
	return addr, nil
}

// Close releases the pipe, for a process whose ready line is not awaited.
func (w *Waiter) Close() error {
	w.closeOnce.Do(func() {
		w.w.Close()
		w.r.Close()
	})
	return nil
}
