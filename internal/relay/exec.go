package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"
)

// filer is implemented by *net.TCPConn (and punch.Conn): a duplicate of the
// socket that a child process can own directly.
type filer interface {
	File() (*os.File, error)
}

// Exec runs command (through the system shell) with conn as its standard
// input and output, and stderr as its standard error. The child gets the
// socket itself as fds 0 and 1 where the OS allows it, so no relay
// goroutine sits in the data path; it inherits no other descriptor of ours
// (Go opens everything close-on-exec). The connection ends when the child
// exits. When ctx ends the child is sent SIGTERM (killed after a grace
// period). The returned error is the child's *exec.ExitError on a non-zero
// exit. If the child failed and its last output on stderr did not end its
// line, Exec ends it, so that the caller's line saying so starts a line of
// its own (the child's stderr is a pipe for that reason, not stderr itself).
func Exec(ctx context.Context, conn net.Conn, command string, stderr io.Writer) error {
	cmd := shellCommand(ctx, command)
	tail := &lineEnd{w: stderr}
	cmd.Stderr = tail
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = 5 * time.Second

	var sock *os.File
	if f, ok := conn.(filer); ok {
		if dup, err := f.File(); err == nil {
			sock = dup
		}
	}
	if sock != nil {
		// The child owns the socket from here on: our copies must not keep
		// it open after the child exits.
		conn.Close()
		defer sock.Close()
		cmd.Stdin, cmd.Stdout = sock, sock
	} else {
		defer conn.Close()
		cmd.Stdin, cmd.Stdout = conn, conn
	}

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %q: %w", command, err)
	}
	if sock != nil {
		sock.Close()
	}
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if err != nil {
		tail.endLine()
		return fmt.Errorf("running %q: %w", command, err)
	}
	return nil
}

// lineEnd passes writes on and remembers whether the last one ended a line.
type lineEnd struct {
	mu   sync.Mutex
	w    io.Writer
	open bool // the last byte written was not a newline
}

func (l *lineEnd) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if n > 0 {
		l.open = p[n-1] != '\n'
	}
	return n, err
}

func (l *lineEnd) endLine() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open {
		l.w.Write([]byte("\n"))
		l.open = false
	}
}
