package ready

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestMain doubles as the child process: with READY_TEST_CHILD set it
// behaves as a tcpunch process would, then exits.
func TestMain(m *testing.M) {
	switch os.Getenv("READY_TEST_CHILD") {
	case "ready":
		fd, _ := strconv.Atoi(os.Getenv(EnvVar))
		if err := Notify(fd, "127.0.0.1:3478"); err != nil {
			os.Exit(3)
		}
		if os.Getenv(EnvVar) != "" {
			os.Exit(4) // children of ours must not see it
		}
		time.Sleep(200 * time.Millisecond) // ready, and still running
		os.Exit(0)
	case "exit":
		os.Exit(1) // never ready
	case "hang":
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(t *testing.T, mode string) (*exec.Cmd, *Waiter) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "READY_TEST_CHILD="+mode)
	w, err := Attach(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, w
}

func TestReadyLine(t *testing.T) {
	cmd, w := child(t, "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := w.Wait(ctx)
	if err != nil || addr != "127.0.0.1:3478" {
		t.Fatalf("Wait = %q, %v; want 127.0.0.1:3478", addr, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (exit 3: Notify failed, 4: %s left in its environment)", err, EnvVar)
	}
}

func TestExitBeforeReady(t *testing.T) {
	_, w := child(t, "exit")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if addr, err := w.Wait(ctx); !errors.Is(err, ErrExited) {
		t.Fatalf("Wait = %q, %v; want ErrExited", addr, err)
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	_, w := child(t, "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if addr, err := w.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %q, %v; want the context's deadline", addr, err)
	}
}

func TestNotifyWithoutDescriptor(t *testing.T) {
	if err := Notify(0, "x"); err != nil {
		t.Errorf("Notify(0) = %v, want nil: nobody asked", err)
	}
	if err := Notify(-1, "x"); err == nil {
		t.Error("Notify(-1) = nil, want an error")
	}
	if err := Notify(987, "x"); err == nil {
		t.Error("Notify on a descriptor that is not open = nil, want an error")
	}
}
