//go:build !windows

package relay

import (
	"context"
	"os"
	"os/exec"
	"syscall"
)

func shellCommand(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "/bin/sh", "-c", command)
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
