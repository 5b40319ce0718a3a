//go:build linux

package punch

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/testnet"
)

// Without RetransmitSYN (kernels before 6.15), an unanswered SYN is still
// left to the kernel while it resends within the attempt timeout: Linux
// 6.7+ resends the first net.ipv4.tcp_syn_linear_timeouts SYNs after one
// second each, all with the attempt's sequence number. Only when the kernel
// backs off does the watch end the attempt for a fresh one.
func TestWatchLeavesLinearSYNResendsToKernel(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syn_linear_timeouts")
	if err != nil {
		t.Skipf("kernel without linear SYN timeouts: %v", err)
	}
	linear, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	if linear < 2 {
		t.Skipf("net.ipv4.tcp_syn_linear_timeouts is %d", linear)
	}
	t.Parallel()
	hole, ok := testnet.Blackhole(t)
	if !ok {
		t.Fatal("no blackhole on loopback")
	}
	cfg, _ := newConfig(nil)
	cfg.logger = slog.New(slog.DiscardHandler)
	p := &session{cfg: &cfg}
	c := &candidate{addr: hole}

	var sock atomic.Pointer[attemptSocket]
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		sock.Store(&attemptSocket{rc: rc}) // no RetransmitSYN: the kernel's own timers
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resends atomic.Int32
	stop := p.attemptWatch(c, &sock, func() { resends.Add(1) }, cancel)
	began := time.Now()
	_, err = d.DialContext(ctx, "tcp", hole.String())
	took := time.Since(began)
	fired := stop()
	if err == nil || !fired {
		t.Fatalf("dial into a black hole: %v, watch fired %v; want the watch to end it", err, fired)
	}
	t.Logf("%d resends left to the kernel, attempt ended after %v (linear SYN timeouts: %d)", resends.Load(), took, linear)
	if n := int(resends.Load()); n < linear-1 || n > linear+1 {
		t.Errorf("%d resends left to the kernel, want about %d (its linear ones)", n, linear)
	}
}
