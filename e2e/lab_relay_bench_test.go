//go:build linux

package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
	"github.com/tcpunch/tcpunch/rendezvous"
	"golang.org/x/sys/unix"
)

// TestLabRelayGoodput (a benchmark, run on demand: the e2e helpers take
// a *testing.T) compares, on one drop×drop lab path, 1 GiB
// dialer → listener over the direct path (--relay never), over the relay
// (--relay always, end-to-end TLS, and again with --insecure, plaintext),
// and through HAProxy in TCP mode with splice on the same rendezvous host
// (plain bytes from a sender on peer B to a sink on peer A behind a port
// forward on A's NAT), with the CPU-seconds per GiB of the relaying
// process (utime+stime of `tcpunch serve`, or of haproxy). One run:
//
//	TCPUNCH_E2E_BENCH=1 go test -run TestLabRelayGoodput -v ./e2e
//
// (-count=3 for three runs; TCPUNCH_E2E_BENCH=raw runs only the two
// relaying processes with the same sender and sink.)
func TestLabRelayGoodput(b *testing.T) {
	if os.Getenv("TCPUNCH_E2E_BENCH") == "" {
		b.Skip("a benchmark: set TCPUNCH_E2E_BENCH=1 to run it")
	}
	natlab.Require(b)
	const size = 1 << 30
	p, err := natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Direct: true}.Build(testContext(b, time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	closeWithTest(b, p.Lab)
	rv, srv := serveRelayIn(b, p)
	// TCPUNCH_E2E_BENCH_PIN=1: the relaying process (tcpunch serve,
	// HAProxy) gets CPU 1 to itself and everything else (the peers, head,
	// the test's sender and sink) shares CPU 0, as if the relay ran on a
	// machine of its own; both paths' peers then have the same one core.
	pin := func(int) {}
	if os.Getenv("TCPUNCH_E2E_BENCH_PIN") != "" {
		pinTasks(b, os.Getpid(), 0)
		b.Cleanup(func() { unpinTasks(b, os.Getpid()) })
		pin = func(pid int) { pinTasks(b, pid, 1) }
		pin(srv.cmd.Process.Pid)
		b.Log("pinned: the relaying process on CPU 1, everything else on CPU 0")
	}
	type run struct {
		name  string
		args  []string
		relay bool
	}
	runs := []run{
		{"direct (TLS)", []string{"--relay", "never"}, false},
		{"relay (TLS)", []string{"--relay", "always"}, true},
		{"relay (--insecure)", []string{"--relay", "always", "--insecure"}, true},
	}
	goodput := map[string]float64{}
	if os.Getenv("TCPUNCH_E2E_BENCH") == "raw" {
		runs = nil // only the relaying processes: raw legs and HAProxy
	}
	cli := func() {
		for i, r := range runs {
			name := fmt.Sprintf("bench-%d", i)
			cpu0 := procCPU(b, srv.cmd.Process.Pid)
			// sh -c SCRIPT sh BINARY ARGS: the shell redirects, the binary
			// reads and writes the files itself.
			l := start(b, append(in(p.A), "sh", "-c", `exec "$@" > /dev/null`, "sh"), nil, nil, append(append([]string{"listen", "-r", rv}, r.args...), name)...)
			l.waitStderr(`listening as`, 30*time.Second)
			began := time.Now()
			d := start(b, append(in(p.B), "sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | "$@"`, size), "sh"), nil, nil, append(append([]string{"dial", "-r", rv}, r.args...), name)...)
			if code := d.wait(5 * time.Minute); code != 0 {
				b.Fatalf("dial %v: exit %d: %s", r.args, code, d.stderr.String())
			}
			l.wait(time.Minute)
			el := time.Since(began).Seconds()
			cpu := procCPU(b, srv.cmd.Process.Pid) - cpu0
			goodput[r.name] = size / el / (1 << 20)
			b.Logf("%-20s 1 GiB in %.2f s: %4.0f MiB/s; server CPU %.2f s per GiB; peers' CPU %.2f s (dialer, with head) + %.2f s (listener)",
				r.name, el, goodput[r.name], cpu, exitedCPU(d), exitedCPU(l))
		}
	}
	relays := func() {
		el, cpu := rawRelay(b, p, rv, srv.cmd.Process.Pid, size)
		goodput["raw relay"] = size / el / (1 << 20)
		b.Logf("%-20s 1 GiB in %.2f s: %4.0f MiB/s; server CPU %.2f s per GiB", "relay (raw legs)", el, goodput["raw relay"], cpu)
		el, cpu = haproxyRelay(b, p, size, pin)
		goodput["haproxy"] = size / el / (1 << 20)
		b.Logf("%-20s 1 GiB in %.2f s: %4.0f MiB/s; haproxy CPU %.2f s per GiB", "haproxy (plain)", el, goodput["haproxy"], cpu)
	}
	// With -count=N the runs alternate which half goes first, so neither
	// always meets the machine warmer or busier.
	relayBenchRuns++
	if relayBenchRuns%2 == 1 {
		cli()
		relays()
	} else {
		relays()
		cli()
	}

	b.Logf("relayed/direct goodput: %.2f", goodput["relay (TLS)"]/goodput["direct (TLS)"])
	b.Logf("relay server/HAProxy, same sender and sink: %.2f", goodput["raw relay"]/goodput["haproxy"])
	b.Logf("tcpunch relay/HAProxy goodput: %.2f with TLS, %.2f with --insecure (HAProxy relays plain bytes)",
		goodput["relay (TLS)"]/goodput["haproxy"], goodput["relay (--insecure)"]/goodput["haproxy"])
}

var relayBenchRuns int

// pinTasks sets the CPU affinity of every thread of process pid to cpu
// (threads it starts later inherit it).
func pinTasks(tb testing.TB, pid, cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	setTasks(tb, pid, &set)
}

// unpinTasks lets every thread of pid run on every CPU again.
func unpinTasks(tb testing.TB, pid int) {
	var set unix.CPUSet
	for i := range runtime.NumCPU() {
		set.Set(i)
	}
	setTasks(tb, pid, &set)
}

func setTasks(tb testing.TB, pid int, set *unix.CPUSet) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			tb.Fatalf("setting the CPU affinity of thread %d of process %d: %v", tid, pid, err)
		}
	}
}

// exitedCPU is the user+system CPU time of an exited process and of the
// descendants it waited for.
func exitedCPU(p *proc) float64 {
	st := p.cmd.ProcessState
	return (st.UserTime() + st.SystemTime()).Seconds()
}

// procCPU is a process's user+system CPU time in seconds.
func procCPU(tb *testing.T, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// rawRelay moves size bytes one way through `tcpunch serve`'s relay with
// the load HAProxy gets in haproxyRelay: the test process itself pairs a
// listener on peer A with a dialer on peer B at the server rv (plain
// names, no NAT check) and opens both relay legs from inside the peers'
// namespaces, then the same kind of loop sends 256 KiB writes (each one
// relay frame) from B and reads into 256 KiB from A until EOF. So this
// compares the relaying processes, not the peers in front of them. It
// returns the seconds from the first write to the EOF and the server's
// CPU-seconds over that time, scaled to one GiB.
func rawRelay(t *testing.T, p *natlab.Pair, rv string, serverPID int, size int64) (seconds, cpuPerGiB float64) {
	t.Helper()
	ctx := testContext(t, 10*time.Minute)
	name := fmt.Sprintf("raw-relay-%d", time.Now().UnixNano())
	noCheck := rendezvous.WithNATCheck(false)
	anyA := netip.AddrPortFrom(p.A.Addr(), 0)
	anyB := netip.AddrPortFrom(p.B.Addr(), 0)
	var reg *rendezvous.Registration
	if err := p.A.Do(func() (err error) {
		reg, err = rendezvous.Register(ctx, rv, anyA, name, nil, noCheck)
		return err
	}); err != nil {
		t.Fatalf("registering %s from peer A: %v", name, err)
	}
	defer reg.Close()
	var dpi rendezvous.PeerInfo
	var dctl io.Closer
	if err := p.B.Do(func() (err error) {
		dpi, dctl, err = rendezvous.Connect(ctx, rv, anyB, name, nil, noCheck)
		return err
	}); err != nil {
		t.Fatalf("connecting to %s from peer B: %v", name, err)
	}
	defer dctl.Close()
	lpi, err := reg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dpi.RelayToken.IsZero() || dpi.RelayToken != lpi.RelayToken {
		t.Fatalf("relay tokens: dialer %v, listener %v", dpi.RelayToken, lpi.RelayToken)
	}
	var legA, legB *rendezvous.RelayConn
	errc := make(chan error, 2)
	go func() {
		errc <- p.A.Do(func() (err error) {
			legA, err = rendezvous.DialRelay(ctx, rv, lpi.RelayToken, rendezvous.RoleControlled)
			return err
		})
	}()
	go func() {
		errc <- p.B.Do(func() (err error) {
			legB, err = rendezvous.DialRelay(ctx, rv, dpi.RelayToken, rendezvous.RoleControlling)
			return err
		})
	}()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("relay leg: %v", err)
		}
	}
	defer legA.Close()
	defer legB.Close()

	got := make(chan sunk, 1)
	go func() { got <- sinkAll(legA) }()
	cpu0 := procCPU(t, serverPID)
	began := time.Now()
	if err := blast(legB, size); err != nil {
		t.Fatalf("sending through the relay: %v", err)
	}
	if err := legB.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var s sunk
	select {
	case s = <-got:
	case <-time.After(5 * time.Minute):
		t.Fatal("the sink got no EOF through the relay")
	}
	cpu := procCPU(t, serverPID) - cpu0
	if s.err != nil || s.n != size {
		t.Fatalf("the sink behind the relay got %d of %d bytes: %v", s.n, size, s.err)
	}
	return s.at.Sub(began).Seconds(), cpu * (1 << 30) / float64(size)
}
