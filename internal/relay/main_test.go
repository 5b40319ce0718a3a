package relay

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// As the tcpunch command does at start-up.
	if err := CloseInheritedOnExec(); err != nil {
		fmt.Fprintln(os.Stderr, "CloseInheritedOnExec:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
