//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// haproxyFwdPort is the port peer A's NAT forwards to the plain sink on A.
const haproxyFwdPort = 5201

// haproxyRelay moves size bytes one way through HAProxy (TCP mode, splice
// in both directions) on the lab's rendezvous host: a plain TCP sender on
// peer B connects to HAProxy, which connects through a port forward on
// peer A's NAT to a plain TCP sink on A, the same path the tcpunch relay's
// two legs take. It returns the seconds from the sender's connect to the
// sink's EOF and HAProxy's CPU-seconds (utime+stime) over that time,
// scaled to one GiB. pin is called with HAProxy's pid before the transfer.
func haproxyRelay(t *testing.T, p *natlab.Pair, size int64, pin func(pid int)) (seconds, cpuPerGiB float64) {
	t.Helper()
	bin := requireHAProxy(t)
	ctx := testContext(t, 10*time.Minute)
	rdv := p.Rendezvous()
	front := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort+2)
	back := netip.AddrPortFrom(publicAddr(p.A), haproxyFwdPort)
	if err := p.A.Router().ForwardTCP(haproxyFwdPort, netip.AddrPortFrom(p.A.Addr(), haproxyFwdPort)); err != nil {
		t.Fatal(err)
	}

	// The sink: read everything, count it, report at EOF.
	ln, err := p.A.Listen(ctx, "tcp4", netip.AddrPortFrom(p.A.Addr(), haproxyFwdPort).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan sunk, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- sunk{err: err}
			return
		}
		defer c.Close()
		got <- sinkAll(c)
	}()

	cfg := filepath.Join(t.TempDir(), "haproxy-bench.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    option splice-request
    option splice-response
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend relay
    bind %s
    default_backend sink
backend sink
    server a %s
`, front, back)), 0o644); err != nil {
		t.Fatal(err)
	}
	hap, hapOut := haproxyIn(ctx, t, rdv, bin, cfg)
	// Wait until HAProxy accepts; probe from the rendezvous host itself
	// so the probe reaches neither the backend nor the sink.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", hap.Process.Pid)); err == nil && hasListener(string(raw), front) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %v:\n%s", front, hapOut.String())
		}
	}

	pin(hap.Process.Pid)
	cpu0 := procCPU(t, hap.Process.Pid)
	began := time.Now()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := p.B.Dial(dctx, "tcp4", front.String())
	cancel()
	if err != nil {
		t.Fatalf("dialing haproxy at %v from peer B: %v", front, err)
	}
	if err := blast(c, size); err != nil {
		t.Fatalf("sending through haproxy: %v\n%s", err, hapOut.String())
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var s sunk
	select {
	case s = <-got:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the sink got no EOF through haproxy:\n%s", hapOut.String())
	}
	c.Close()
	cpu := procCPU(t, hap.Process.Pid) - cpu0
	if s.err != nil || s.n != size {
		t.Fatalf("the sink behind haproxy got %d of %d bytes: %v", s.n, size, s.err)
	}
	return s.at.Sub(began).Seconds(), cpu * (1 << 30) / float64(size)
}

// sunk is what a sink loop read: how much, when it read EOF, or why not.
type sunk struct {
	n   int64
	at  time.Time
	err error
}

// sinkAll reads r in 256 KiB reads until EOF, the benches' sink loop.
func sinkAll(r io.Reader) sunk {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return sunk{n: n, at: time.Now()}
		}
		if err != nil {
			return sunk{n: n, err: err}
		}
	}
}

// blast writes size zero bytes to w in 256 KiB writes, the benches'
// sender loop.
func blast(w io.Writer, size int64) error {
	buf := make([]byte, 256<<10)
	for left := size; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	return nil
}

// hasListener reports whether a /proc/net/tcp table has a socket in
// LISTEN state on a.
func hasListener(table string, a netip.AddrPort) bool {
	b := a.Addr().As4()
	// /proc/net/tcp prints the address as the in-memory 32-bit word, in
	// hex: little-endian on the machines this lab runs on.
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], a.Port())
	for _, line := range strings.Split(table, "\n") {
		var sl, loc, rem, st string
		if n, _ := fmt.Sscan(line, &sl, &loc, &rem, &st); n == 4 && loc == local && st == "0A" {
			return true
		}
	}
	return false
}
