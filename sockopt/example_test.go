package sockopt_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"
	"time"

	"github.com/tcpunch/tcpunch/sockopt"
)

// A listener and an outgoing connection on one local port: what a hole
// puncher needs so that the peer's SYN and ours belong to one 4-tuple.
func Example() {
	ctx := context.Background()
	ln, err := sockopt.ListenConfig().Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	far, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer far.Close()

	local := ln.Addr().(*net.TCPAddr).AddrPort()
	c, err := sockopt.Dialer(local).DialContext(ctx, "tcp", far.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("dialed from the listening port:", c.LocalAddr().String() == ln.Addr().String())
	// Output: dialed from the listening port: true
}

// Dial attempts of a hole puncher: an abandoned attempt frees its 4-tuple at
// once, and an unanswered SYN is resent every second on the same socket,
// where the kernel allows it. The connection you keep gets normal behaviour
// back.
func ExampleRetransmitSYN() {
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		if err := sockopt.Control(network, address, rc); err != nil {
			return err
		}
		if err := sockopt.AbortOnClose(network, address, rc); err != nil {
			return err
		}
		if err := sockopt.RetransmitSYN(rc, time.Second); err != nil && !errors.Is(err, sockopt.ErrNoRetransmitControl) {
			return err
		}
		return nil
	}}
	far, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer far.Close()
	c, err := d.Dial("tcp", far.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	_ = tc.SetLinger(-1) // a normal close for the connection we keep
	if raw, err := tc.SyscallConn(); err == nil {
		_ = sockopt.RestoreRetransmit(raw)
	}
	fmt.Println("connected")
	// Output: connected
}
