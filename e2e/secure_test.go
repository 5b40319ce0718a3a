//go:build linux

package e2e_test

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// codeOf waits for the one-time code a code-mode listener hands on: the
// second field of its ready line (package ready), which must agree with
// the code it prints for people.
func codeOf(t *testing.T, l *proc) string {
	t.Helper()
	fields := l.waitReadyFields(30 * time.Second)
	if len(fields) != 2 {
		t.Fatalf("code-mode listener's ready line %q: want ADDR CODE", fields)
	}
	code := fields[1]
	// stderr reaches us through another pipe and a copying goroutine: it
	// may lag behind the ready line, so wait for it.
	l.waitStderr(`one-time code: `+regexp.QuoteMeta(code)+`\n`, 30*time.Second)
	l.waitStderr(`tcpunch dial -r \S+ `+regexp.QuoteMeta(code)+`\n`, 30*time.Second)
	return code
}

// TestCodeMode: listen without NAME prints a code and the dial line; the
// dial with that code moves data both ways, both exit 0, and the code is
// gone afterwards (one-shot).
func TestCodeMode(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	const size = 4 << 20
	lOut, dOut := newHashWriter(), newHashWriter()
	l := start(t, noSecret, stream(21, size), lOut, "listen", "-r", rv, "--report", "json")
	code := codeOf(t, l)
	if !strings.Contains(l.stderr.String(), "tcpunch dial -r "+rv+" "+code) {
		t.Errorf("listener does not print the dial line for %s:\n%s", code, l.stderr.String())
	}
	d := start(t, noSecret, stream(22, size), dOut, "dial", "-r", rv, "--report", "json", code)
	if c := d.wait(60 * time.Second); c != 0 {
		t.Fatalf("dial exit %d:\n%s", c, d.stderr.String())
	}
	if c := l.wait(60 * time.Second); c != 0 {
		t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
	}
	if got, n := lOut.sum(); got != digest(stream(22, size)) {
		t.Errorf("listener got %d bytes that differ", n)
	}
	if got, n := dOut.sum(); got != digest(stream(21, size)) {
		t.Errorf("dialer got %d bytes that differ", n)
	}
	if !strings.Contains(reportLine(t, d.stderr.String()), `"auth":"code"`) {
		t.Errorf("report lacks auth code: %s", reportLine(t, d.stderr.String()))
	}
	// The code was for one connection: its nameplate is free now.
	again := start(t, noSecret, nil, io.Discard, "dial", "-r", rv, "--timeout", "3s", code)
	if c := again.wait(30 * time.Second); c != 4 {
		t.Errorf("dial of a used code: exit %d, want 4 (unknown name):\n%s", c, again.stderr.String())
	}
}

// TestWrongCodeRetires: three dials with the right nameplate and wrong
// words are each refused with exit 6, no byte crosses either way, and the
// third retires the code: the listener exits 6 saying so.
func TestWrongCodeRetires(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	var lOut syncBuffer // read while the listener still runs
	l := start(t, noSecret, strings.NewReader("listener secret data\n"), &lOut, "listen", "-r", rv)
	code := codeOf(t, l)
	nameplate, _, _ := strings.Cut(code, "-")
	for i := range 3 {
		var dOut syncBuffer
		d := start(t, noSecret, strings.NewReader("dialer data\n"), &dOut, "dial", "-r", rv, nameplate+"-apple-apple-apple")
		if c := d.wait(60 * time.Second); c != 6 {
			t.Fatalf("wrong code %d: exit %d, want 6:\n%s", i+1, c, d.stderr.String())
		}
		if !strings.Contains(lastLine(d.stderr.String()), "authentication failed") {
			t.Errorf("wrong code %d: last line %q", i+1, lastLine(d.stderr.String()))
		}
		if dOut.Len() != 0 {
			t.Errorf("wrong code %d: dialer received %q", i+1, dOut.String())
		}
	}
	if c := l.wait(30 * time.Second); c != 6 {
		t.Fatalf("listener after 3 wrong codes: exit %d, want 6:\n%s", c, l.stderr.String())
	}
	if !strings.Contains(lastLine(l.stderr.String()), "retired after 3 failed attempts") {
		t.Errorf("listener's last line %q", lastLine(l.stderr.String()))
	}
	if lOut.Len() != 0 {
		t.Errorf("listener received %q", lOut.String())
	}
}

// TestWrongSecretRefused: a dialer with another secret finds no listener
// (exit 4: the server sees a different derived name), receives nothing,
// and delivers nothing; the listener goes on serving and the right secret
// gets through afterwards.
func TestWrongSecretRefused(t *testing.T) {
	t.Parallel()
	rv, _ := serve(t, nil, "127.0.0.1:0")
	other := filepath.Join(t.TempDir(), "other")
	if err := writeSecret(other); err != nil {
		t.Fatal(err)
	}
	var lOut syncBuffer // read while the listener still runs
	l := start(t, nil, strings.NewReader("for the right peer\n"), &lOut, "listen", "-r", rv, "box")
	if f := l.waitReadyFields(30 * time.Second); len(f) != 1 {
		t.Errorf("secret-mode listener's ready line %q: want the address alone", f)
	}
	var dOut syncBuffer
	d := start(t, nil, strings.NewReader("intruder\n"), &dOut, "dial", "-r", rv, "--secret-file", other, "box")
	if c := d.wait(30 * time.Second); c != 4 {
		t.Fatalf("wrong secret: exit %d, want 4:\n%s", c, d.stderr.String())
	}
	if dOut.Len() != 0 || lOut.Len() != 0 {
		t.Fatalf("bytes crossed with a wrong secret: dialer got %q, listener got %q", dOut.String(), lOut.String())
	}
	var good syncBuffer
	ok := start(t, nil, strings.NewReader("friend\n"), &good, "dial", "-r", rv, "box")
	if c := ok.wait(30 * time.Second); c != 0 {
		t.Fatalf("right secret after a wrong one: exit %d:\n%s", c, ok.stderr.String())
	}
	if c := l.wait(30 * time.Second); c != 0 {
		t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
	}
	if lOut.String() != "friend\n" || good.String() != "for the right peer\n" {
		t.Errorf("listener got %q, dialer got %q", lOut.String(), good.String())
	}
}

// TestTrustUsage: NAME with neither secret nor code nor --insecure is exit
// 2 with one line saying what to add; --insecure warns; a bad secret file
// is exit 2.
func TestTrustUsage(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"listen", "dial"} {
		p := start(t, noSecret, nil, io.Discard, cmd, "-r", "127.0.0.1:1", "name")
		if c := p.wait(10 * time.Second); c != 2 {
			t.Errorf("%s NAME without trust: exit %d, want 2", cmd, c)
		}
		if got := strings.TrimSpace(p.stderr.String()); strings.Count(got, "\n") != 0 || !strings.Contains(got, "--secret-file") || !strings.Contains(got, "--insecure") {
			t.Errorf("%s NAME without trust: want one line naming --secret-file and --insecure, got %q", cmd, got)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("tps1-nonsense\n"), 0o600)
	p := start(t, nil, nil, io.Discard, "dial", "-r", "127.0.0.1:1", "--secret-file", bad, "name")
	if c := p.wait(10 * time.Second); c != 2 {
		t.Errorf("bad secret file: exit %d, want 2: %s", c, p.stderr.String())
	}
	w := start(t, nil, nil, io.Discard, "dial", "-r", "127.0.0.1:1", "--timeout", "1s", "--insecure", "name")
	w.wait(30 * time.Second)
	if !strings.Contains(w.stderr.String(), "warning: --insecure") {
		t.Errorf("--insecure without a warning:\n%s", w.stderr.String())
	}
}

// TestSecureLab: the secret and the code modes move 64 MiB each way,
// sha256 exact, through the real-NAT lab's drop×drop and rst×rst with
// 50 ms one-way delay. 64 MiB keeps CI time sane and crosses the same code
// paths; TCPUNCH_E2E_BIG=1 moves the 1 GiB each way instead
// (BENCHMARKS.md section 5 has the times of one such run).
func TestSecureLab(t *testing.T) {
	natlab.Require(t)
	size, deadline := int64(64<<20), 5*time.Minute
	if os.Getenv("TCPUNCH_E2E_BIG") == "1" {
		size, deadline = 1<<30, 20*time.Minute
	}
	drop, rst := natlab.Side{NAT: natlab.NATDrop}, natlab.Side{NAT: natlab.NATReject}
	for _, sc := range []natlab.Scenario{
		{Name: "drop×drop-50ms", A: drop, B: drop, Delay: 50 * time.Millisecond, Direct: true},
		{Name: "rst×rst-50ms", A: rst, B: rst, Delay: 50 * time.Millisecond, Direct: true},
	} {
		for _, mode := range []string{"secret", "code"} {
			t.Run(sc.Name+"/"+mode, func(t *testing.T) {
				p := cell{Scenario: sc}.build(t)
				rv := serveIn(t, p)
				lPre, dPre := in(p.A), in(p.B)
				lArgs, dArgs := []string{"listen", "-r", rv, "--timeout", "60s", "--report", "json"}, []string{"dial", "-r", rv, "--timeout", "60s", "--report", "json"}
				if mode == "code" {
					lPre, dPre = append(append([]string{}, lPre...), noSecret...), append(append([]string{}, dPre...), noSecret...)
				} else {
					lArgs = append(lArgs, "lab")
				}
				lOut, dOut := newHashWriter(), newHashWriter()
				l := start(t, lPre, stream(31, size), lOut, lArgs...)
				if mode == "code" {
					dArgs = append(dArgs, codeOf(t, l))
				} else {
					l.waitStderr("listening as", 30*time.Second)
					dArgs = append(dArgs, "lab")
				}
				t0 := time.Now()
				d := start(t, dPre, stream(32, size), dOut, dArgs...)
				if c := d.wait(deadline); c != 0 {
					diagnose(t, p)
					t.Fatalf("dial exit %d:\n%s", c, d.stderr.String())
				}
				if c := l.wait(time.Minute); c != 0 {
					t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
				}
				if got, n := lOut.sum(); got != digest(stream(32, size)) {
					t.Errorf("listener got %d bytes that differ from the %d sent", n, size)
				}
				if got, n := dOut.sum(); got != digest(stream(31, size)) {
					t.Errorf("dialer got %d bytes that differ from the %d sent", n, size)
				}
				r := parseReport(t, d.stderr.String())
				t.Logf("%s %s: %s in %.1f ms, handshake %.1f ms; %d MiB each way in %.1f s", sc.Name, mode, r.Method, r.ElapsedMS, r.HandshakeMS, size>>20, time.Since(t0).Seconds())
			})
		}
	}
}

// killAfter is a stdout that kills its process once n bytes arrived.
type killAfter struct {
	mu   sync.Mutex
	n    int
	got  int
	kill func()
}

func (k *killAfter) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got += len(p)
	if k.got >= k.n && k.kill != nil {
		k.kill()
		k.kill = nil
	}
	return len(p), nil
}

// TestLostDataIsNotSuccess: the listener is killed (SIGKILL) halfway
// through what the dialer sends; the dialer exits 5 with one line saying
// how much was sent and acknowledged, in the secret and --insecure modes.
func TestLostDataIsNotSuccess(t *testing.T) {
	t.Parallel()
	for _, extra := range [][]string{nil, {"--insecure"}} {
		rv, _ := serve(t, nil, "127.0.0.1:0")
		out := &killAfter{n: 8 << 20}
		l := start(t, nil, nil, out, append(append([]string{"listen", "-r", rv}, extra...), "lossy")...)
		out.mu.Lock()
		out.kill = func() { l.cmd.Process.Kill() }
		out.mu.Unlock()
		l.waitReady(30 * time.Second)
		d := start(t, nil, stream(41, 256<<20), io.Discard, append(append([]string{"dial", "-r", rv}, extra...), "lossy")...)
		if c := d.wait(60 * time.Second); c != 5 {
			t.Fatalf("%v: dialer after the listener died: exit %d, want 5:\n%s", extra, c, d.stderr.String())
		}
		last := lastLine(d.stderr.String())
		t.Logf("%v: %s", extra, last)
		if !strings.Contains(last, "transfer incomplete: sent") {
			t.Errorf("%v: last line %q lacks the counts", extra, last)
		}
	}
}

// TestSecurePcap: a capture on NAT A's WAN link during a secret-mode
// session holds the session's packets but never the payload marker; the
// same capture of an --insecure session does hold it (so the check can
// fail).
func TestSecurePcap(t *testing.T) {
	natlab.Require(t)
	const marker = "tcpunch-payload-marker-5b1e"
	drop := natlab.Side{NAT: natlab.NATDrop}
	for _, mode := range []string{"secret", "insecure"} {
		t.Run(mode, func(t *testing.T) {
			p := cell{Scenario: natlab.Scenario{Name: "drop×drop", A: drop, B: drop, Direct: true}}.build(t)
			rv := serveIn(t, p)
			ctx := testContext(t, 2*time.Minute)
			capt, err := p.A.Router().Capture(ctx)
			if err != nil {
				t.Fatal(err)
			}
			extra := []string{}
			if mode == "insecure" {
				extra = []string{"--insecure"}
			}
			payload := strings.Repeat(marker+"\n", 64)
			var lOut syncBuffer // read while the listener still runs
			l := start(t, in(p.A), strings.NewReader(payload), &lOut, append(append([]string{"listen", "-r", rv}, extra...), "pcap")...)
			l.waitStderr("listening as", 30*time.Second)
			d := start(t, in(p.B), strings.NewReader(payload), io.Discard, append(append([]string{"dial", "-r", rv}, extra...), "pcap")...)
			if c := d.wait(60 * time.Second); c != 0 {
				t.Fatalf("dial exit %d:\n%s", c, d.stderr.String())
			}
			if c := l.wait(60 * time.Second); c != 0 {
				t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
			}
			if err := capt.Stop(); err != nil {
				t.Fatal(err)
			}
			if lOut.String() != payload {
				t.Fatalf("listener got %d bytes, want %d", lOut.Len(), len(payload))
			}
			if capt.Truncated() || capt.Packets() < 10 {
				t.Fatalf("capture: %d packets, truncated %v", capt.Packets(), capt.Truncated())
			}
			switch seen := capt.Contains([]byte(marker)); {
			case mode == "secret" && seen:
				t.Error("the payload marker crossed NAT A's WAN link in clear")
			case mode == "insecure" && !seen:
				t.Error("the --insecure session's marker is not in the capture: the check is blind")
			}
			t.Logf("%s: %d packets captured on %s, marker seen: %v", mode, capt.Packets(), capt.Interface(), capt.Contains([]byte(marker)))
		})
	}
}

// TestRestartRaceProtectedName: the restart race, with a secret.
// The server is SIGKILLed and restarted on the same port while squatters
// loop: one asks for the listener's pk- name without its key (`listen
// --insecure pk-…`: the server answers 401), one holds another secret
// and the same label (it registers, but a different pk- name). The
// legitimate listener gets its name back, a dialer with the right secret
// reaches it, and no squatter receives a byte.
func TestRestartRaceProtectedName(t *testing.T) {
	t.Parallel()
	// The server's default limits: every process here shares 127.0.0.1,
	// and the squatters' tries must not hold the owner's re-registration
	// back (a proven Register is not charged to its source).
	rv, srv := serve(t, nil, "127.0.0.1:0")
	var lOut syncBuffer
	l := start(t, nil, strings.NewReader("for the owner\n"), &lOut, "listen", "-r", rv, "vault")
	l.waitReady(30 * time.Second)
	name := srv.waitStderr(`msg=registered .*name=(pk-[a-z2-7]+)`, 30*time.Second)
	other := filepath.Join(t.TempDir(), "other")
	if err := writeSecret(other); err != nil {
		t.Fatal(err)
	}

	srv.cmd.Process.Kill() // SIGKILL: no drain, the listener's control connection just breaks
	srv.wait(30 * time.Second)

	// The open-name squatter loops from before the restart until the end
	// of the test, each try with a short timeout. t.Errorf, not t.Fatal,
	// from its goroutine.
	stop := make(chan struct{})
	var refusals atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			var out syncBuffer
			s := start(t, nil, nil, &out, "listen", "--insecure", "-r", rv, "--timeout", "2s", name)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				s.cmd.Process.Kill() // a squatter that got the name would wait here
				<-s.done
			}
			if s.err == nil || strings.Contains(s.stderr.String(), "listening as") {
				t.Errorf("open-name squatter registered %s (%v):\n%s", name, s.err, s.stderr.String())
			}
			if out.Len() != 0 {
				t.Errorf("open-name squatter received %q", out.String())
			}
			if strings.Contains(s.stderr.String(), "code 401") {
				refusals.Add(1)
			}
		}
	})
	stopSquatter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSquatter()
	var sqOut syncBuffer
	sq := start(t, nil, strings.NewReader("squatter\n"), &sqOut, "listen", "-r", rv, "--secret-file", other, "vault")

	_, srv2 := serve(t, nil, rv) // the same address
	l.waitStderr(`registered again`, 60*time.Second)
	sq.waitReady(30 * time.Second) // registered too: under its own name, not ours
	// The owner is back; the squatter goes on trying for a while, and the
	// owner keeps its name through that.
	for deadline := time.Now().Add(30 * time.Second); refusals.Load() < 10; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d squatter tries refused with 401 in 30 s", refusals.Load())
		}
	}

	var dOut syncBuffer
	d := start(t, nil, strings.NewReader("owner's dialer\n"), &dOut, "dial", "-r", rv, "vault")
	if c := d.wait(60 * time.Second); c != 0 {
		t.Fatalf("dial with the right secret after the restart: exit %d:\n%s", c, d.stderr.String())
	}
	if c := l.wait(30 * time.Second); c != 0 {
		t.Fatalf("listen exit %d:\n%s", c, l.stderr.String())
	}
	if dOut.String() != "for the owner\n" || lOut.String() != "owner's dialer\n" {
		t.Errorf("dialer got %q, listener got %q", dOut.String(), lOut.String())
	}
	if sqOut.Len() != 0 {
		t.Errorf("the other secret's listener received %q", sqOut.String())
	}
	stopSquatter()
	// The restarted server registered our name once: for its owner.
	if n := len(regexp.MustCompile(`msg=registered \S+ name=`+name).FindAllString(srv2.stderr.String(), -1)); n != 1 {
		t.Errorf("the restarted server registered %s %d times, want once (the owner):\n%s", name, n, srv2.stderr.String())
	}
	t.Logf("%d squatter tries refused with 401 around the restart", refusals.Load())
}
