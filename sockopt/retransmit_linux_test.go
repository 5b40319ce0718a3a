//go:build linux

package sockopt_test

import (
	"context"
	"errors"
	"github.com/tcpunch/tcpunch/internal/testnet"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tcpunch/tcpunch/sockopt"
)

// skipWithoutRetransmitControl skips on kernels before 6.15, except in CI,
// whose kernel has the option.
func skipWithoutRetransmitControl(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, sockopt.ErrNoRetransmitControl) && os.Getenv("CI") != "true" {
		t.Skipf("kernel lacks TCP_RTO_MAX_MS: %v", err)
	}
}

// TestRetransmitSYN checks the kernel's own behaviour, which the engine
// relies on: the fifth retransmitted SYN is where Linux's linear SYN
// timeouts (net.ipv4.tcp_syn_linear_timeouts, 4) end and the timeout would
// double; with RetransmitSYN it stays at the interval.
func TestRetransmitSYN(t *testing.T) {
	t.Parallel()
	hole, ok := testnet.Blackhole(t)
	if !ok {
		t.Fatal("no blackhole on loopback")
	}
	addr := hole.String()
	type dialing struct {
		rc     syscall.RawConn
		setErr error
	}
	started := make(chan dialing, 1)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		started <- dialing{rc, sockopt.RetransmitSYN(rc, time.Second)}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	s := <-started
	skipWithoutRetransmitControl(t, s.setErr)
	if s.setErr != nil {
		t.Fatal(s.setErr)
	}
	var syncnt, rtoMax int
	var ti *unix.TCPInfo
	read := func() {
		s.rc.Control(func(fd uintptr) {
			syncnt, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SYNCNT)
			rtoMax, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, 44)
			ti, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		})
	}
	for read(); ti == nil || ti.Total_retrans < 5; read() {
		select {
		case err := <-done:
			t.Fatalf("connect into a full accept queue ended: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	rto, err := sockopt.RetransmitTimeout(s.rc)
	if err != nil || rto != time.Duration(ti.Rto)*time.Microsecond {
		t.Errorf("RetransmitTimeout: %v, %v; TCP_INFO says %v", rto, err, time.Duration(ti.Rto)*time.Microsecond)
	}
	cancel()
	<-done
	if syncnt != 127 || rtoMax != 1000 {
		t.Errorf("after RetransmitSYN: TCP_SYNCNT %d, TCP_RTO_MAX_MS %d; want 127, 1000", syncnt, rtoMax)
	}
	if ti.State != 2 { // SYN-SENT
		t.Fatalf("socket in state %d, want SYN-SENT", ti.State)
	}
	if got := time.Duration(ti.Rto) * time.Microsecond; got != time.Second {
		t.Errorf("retransmission timeout after %d SYN retransmissions: %v, want 1s", ti.Total_retrans, got)
	}
}

func TestRestoreRetransmit(t *testing.T) {
	_, c := loopbackConn(t)
	raw, _ := c.SyscallConn()
	err := sockopt.RetransmitSYN(raw, 3*time.Second)
	skipWithoutRetransmitControl(t, err)
	if err != nil {
		t.Fatal(err)
	}
	rtoMax := func() int {
		var v int
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, 44) })
		return v
	}
	if got := rtoMax(); got != 3000 {
		t.Errorf("TCP_RTO_MAX_MS after RetransmitSYN(3s): %d", got)
	}
	if err := sockopt.RestoreRetransmit(raw); err != nil {
		t.Fatal(err)
	}
	if got := rtoMax(); got != 120000 {
		t.Errorf("TCP_RTO_MAX_MS after RestoreRetransmit: %d, want the kernel's 120000", got)
	}
	if err := sockopt.RetransmitSYN(raw, 500*time.Millisecond); err == nil {
		t.Error("RetransmitSYN(500ms): no error")
	}
}
