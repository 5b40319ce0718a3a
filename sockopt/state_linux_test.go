//go:build linux

package sockopt_test

import (
	"net"
	"testing"

	"github.com/tcpunch/tcpunch/sockopt"
)

func TestState(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, _ := c.(*net.TCPConn).SyscallConn()
	if st, err := sockopt.State(raw); err != nil || st != sockopt.StateEstablished {
		t.Errorf("connected socket: %v, %v; want ESTABLISHED", st, err)
	}
	lraw, _ := ln.(*net.TCPListener).SyscallConn()
	if st, err := sockopt.State(lraw); err != nil || st != sockopt.StateOther {
		t.Errorf("listening socket: %v, %v; want other (LISTEN)", st, err)
	}
	c.Close()
	if _, err := sockopt.State(raw); err == nil {
		t.Error("State of a closed socket: no error")
	}
}
