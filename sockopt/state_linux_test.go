//go:build linux

package sockopt_test

import (
	"testing"

	"github.com/tcpunch/tcpunch/sockopt"
)

func TestState(t *testing.T) {
	ln, c := loopbackConn(t)
	raw, _ := c.SyscallConn()
	if st, err := sockopt.State(raw); err != nil || st != sockopt.StateEstablished {
		t.Errorf("connected socket: %v, %v; want ESTABLISHED", st, err)
	}
	lraw, _ := ln.SyscallConn()
	if st, err := sockopt.State(lraw); err != nil || st != sockopt.StateOther {
		t.Errorf("listening socket: %v, %v; want other (LISTEN)", st, err)
	}
	c.Close()
	if _, err := sockopt.State(raw); err == nil {
		t.Error("State of a closed socket: no error")
	}
}
