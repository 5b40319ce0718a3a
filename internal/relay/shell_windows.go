//go:build windows

package relay

import (
	"context"
	"os"
	"os/exec"
)

func shellCommand(ctx context.Context, command string) *exec.Cmd {
	return exec.CommandContext(ctx, "cmd.exe", "/C", command)
}

// Windows has no SIGTERM to ask politely with.
func terminate(p *os.Process) error { return p.Kill() }
