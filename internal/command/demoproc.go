package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/internal/ready"
)

// The timeline has its own clock: the server's log time and level go.
var slogPrefix = regexp.MustCompile(`^time=\S+ level=\S+ `)

// timeline merges the stderr lines of the demo's processes, each stamped
// with the time since the demo started.
type timeline struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// demoProc is one tcpunch process of the demo.
type demoProc struct {
	cmd   *exec.Cmd
	ready *ready.Waiter
	done  chan struct{} // closed once its stderr has been read to the end

	waitOnce sync.Once
	err      error
}

// spawn starts c, relays its stderr to the timeline (each sees every line
// first, if set) and offers it the ready handshake of package ready.
func (tl *timeline) spawn(c *exec.Cmd, who string, stdin io.Reader, stdout io.Writer, each func(string)) (*demoProc, error) {
	c.Stdin, c.Stdout = stdin, stdout
	stderr, err := c.StderrPipe()
	if err != nil {
		return nil, err
	}
	w, err := ready.Attach(c)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", who, err)
	}
	p := &demoProc{cmd: c, ready: w, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if each != nil {
				each(line)
			}
			if strings.HasPrefix(line, "{") {
				continue // the --report line; summarized at the end
			}
			line = slogPrefix.ReplaceAllString(strings.TrimPrefix(line, "tcpunch: "), "")
			tl.mu.Lock()
			fmt.Fprintf(tl.w, "%8.1f ms  %-7s %s\n", float64(time.Since(tl.start).Microseconds())/1000, who, line)
			tl.mu.Unlock()
		}
		io.Copy(io.Discard, stderr) // a line too long for the scanner: still read to the end
	}()
	return p, nil
}

// waitReady returns the address the process says it bound once ready:
// serve's listening address, listen's endpoint once registered.
func (p *demoProc) waitReady(ctx context.Context) (string, error) {
	addr, err := p.ready.Wait(ctx)
	if errors.Is(err, ready.ErrExited) {
		return "", fmt.Errorf("it exited first: %w", p.wait())
	}
	return addr, err
}

// wait waits for the process to exit. Its stderr is read to the end first:
// os/exec forbids Wait before then, and the last lines would be lost.
func (p *demoProc) wait() error {
	p.waitOnce.Do(func() {
		<-p.done
		p.err = p.cmd.Wait()
		p.ready.Close()
	})
	return p.err
}

func (p *demoProc) interrupt() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
}

// stop ends the process if it still runs: SIGINT, then after 3 s SIGKILL.
func (p *demoProc) stop() {
	exited := make(chan struct{})
	go func() { p.wait(); close(exited) }()
	select {
	case <-exited:
		return
	default:
	}
	p.interrupt()
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-exited
	}
}
