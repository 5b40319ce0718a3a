package bench

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/internal/ready"
)

// startReady starts a tcpunch server process and waits, at most 10 s, for
// its ready line (package ready): the address it listens on. Its output is
// discarded but for the first lines, shown if it exits before it is ready.
func startReady(cmd *exec.Cmd) (*proc, error) {
	tail := &headWriter{max: 20}
	cmd.Stdout, cmd.Stderr = tail, tail
	// No Pdeathsig: it fires when the forking OS thread exits, and Go retires
	// threads at will (seen killing coturn mid-benchmark). stop() and ctx end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := ready.Attach(cmd)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := w.Wait(ctx)
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not get ready within 10 s: %w: %s", cmd.Path, err, tail)
	}
	p.addr = addr
	return p, nil
}

// headWriter keeps the first max lines written to it.
type headWriter struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  strings.Builder
}

func (h *headWriter) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range string(b) {
		if len(h.lines) >= h.max {
			break
		}
		if c == '\n' {
			h.lines = append(h.lines, h.part.String())
			h.part.Reset()
			continue
		}
		h.part.WriteRune(c)
	}
	return len(b), nil
}

func (h *headWriter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(append(h.lines, h.part.String()), " | ")
}

var _ io.Writer = (*headWriter)(nil)
