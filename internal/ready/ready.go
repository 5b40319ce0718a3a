// Package ready is the readiness handshake between a tcpunch process and the
// program that started it (the demo, the benchmarks, the end-to-end tests,
// or a supervisor script): `--ready-fd N`, or TCPUNCH_READY_FD=N.
//
// A process given a descriptor writes one line to it when it is ready and
// closes it. The line is fields separated by single spaces, none of them
// empty or containing white space. The first is always the address the
// process bound: `tcpunch serve` once it listens (the listening address),
// `tcpunch listen` once its name is registered (its local endpoint, the
// reused port), `tcpunch dial --local` once it accepts clients. `tcpunch
// listen` with a one-time code adds the code as the second field, so the
// starting program can hand it on (the other side runs `tcpunch dial -r
// RENDEZVOUS CODE`) without reading stderr:
//
//	127.0.0.1:41641 7-amber-orbit-lamp
//
// Every other line has the address alone, as before codes existed. A
// reader takes the first field for the address and ignores fields it does
// not know; later versions may append more. The starting program reads
// that line instead of matching log lines, which are for people and may
// change. End of file before the line means the process exited without
// becoming ready.
//
// The descriptor is private to the starting program, which is why a code
// may travel on it.
//
// Both ends live here, so they cannot drift apart: [Notify] in the process,
// [Attach] and [Waiter.Wait] or [Waiter.WaitFields] in the program that
// starts it.
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
	"unicode"
)

// EnvVar names the descriptor as the --ready-fd flag does.
const EnvVar = "TCPUNCH_READY_FD"

// Notify writes the ready line, addr and then any extra fields, to
// descriptor fd and closes it (fd 1 and 2, stdout and stderr, stay open).
// fd 0 means nobody asked: Notify does nothing. It also removes EnvVar from
// the environment, so that children (--exec) do not take the descriptor
// number for theirs. A field that is empty or holds white space is an
// error: it would split or merge fields for the reader.
func Notify(fd int, addr string, extra ...string) error {
	if fd == 0 {
		return nil
	}
	os.Unsetenv(EnvVar)
	if fd < 0 {
		return fmt.Errorf("--ready-fd %d: not a file descriptor", fd)
	}
	fields := append([]string{addr}, extra...)
	for _, f := range fields {
		if f == "" || strings.ContainsFunc(f, unicode.IsSpace) {
			return fmt.Errorf("--ready-fd %d: ready line field %q is empty or holds white space", fd, f)
		}
	}
	f := os.NewFile(uintptr(fd), "ready-fd")
	if f == nil {
		return fmt.Errorf("--ready-fd %d: not a file descriptor", fd)
	}
	_, err := io.WriteString(f, strings.Join(fields, " ")+"\n")
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

// Wait returns the address the process wrote once ready: the first field
// of its ready line. It returns ErrExited if the process ends first, and
// ctx's error if ctx ends first. Wait (or WaitFields) may be called once,
// after cmd.Start (or after it failed).
func (w *Waiter) Wait(ctx context.Context) (string, error) {
	fields, err := w.WaitFields(ctx)
	if err != nil {
		return "", err
	}
	return fields[0], nil
}

// WaitFields is Wait returning every field of the ready line: the address,
// then, for `tcpunch listen` with a one-time code, the code. The slice has
// at least one element when err is nil.
func (w *Waiter) WaitFields(ctx context.Context) ([]string, error) {
	w.w.Close() // the child holds its own copy now; ours would hide its exit
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	// A ready line is short; a process that writes more without a newline
	// is not one of ours, and must not make us buffer without bound.
	line, err := bufio.NewReader(io.LimitReader(w.r, maxLine)).ReadString('\n')
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err == io.EOF && line == "":
		return nil, ErrExited
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("reading the ready line: %w", err)
	case err == io.EOF && len(line) == maxLine:
		return nil, fmt.Errorf("the ready line is longer than %d bytes", maxLine)
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil, errors.New("the ready line is empty")
	}
	return fields, nil
}

// maxLine bounds the ready line a Waiter reads.
const maxLine = 4096

// Close releases the pipe, for a process whose ready line is not awaited.
func (w *Waiter) Close() error {
	w.closeOnce.Do(func() {
		w.w.Close()
		w.r.Close()
	})
	return nil
}
