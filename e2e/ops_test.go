//go:build linux

package e2e_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pires/go-proxyproto"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// readyz returns the status code of /readyz, 0 if it could not be asked.
func readyz(client *http.Client, admin string) int {
	resp, err := client.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// SIGTERM turns /readyz to 503 at once (within 100 ms: the poll below is
// every 2 ms), the server keeps serving for --drain-delay, and the process
// then exits 0 by itself.
func TestServeDrainFlipsReadiness(t *testing.T) {
	const delay = 2 * time.Second
	p := start(t, nil, nil, io.Discard, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--drain-delay", delay.String(), "--drain-grace", "10s")
	addr := p.waitStderr(`msg=listening addr=(\S+)`, 30*time.Second)
	admin := p.waitStderr(`admin=(\S+)`, 30*time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	if code := readyz(client, admin); code != http.StatusOK {
		t.Fatalf("/readyz = %d before SIGTERM, want 200", code)
	}
	resp, err := client.Get("http://" + admin + "/livez")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/livez: %v %v", resp, err)
	}
	resp.Body.Close()

	p.signal(syscall.SIGTERM)
	sent := time.Now()
	var flipped time.Duration
	for time.Since(sent) < 5*time.Second {
		if readyz(client, admin) == http.StatusServiceUnavailable {
			flipped = time.Since(sent)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if flipped == 0 {
		t.Fatal("/readyz never turned 503 after SIGTERM")
	}
	t.Logf("/readyz 503 %v after SIGTERM", flipped)
	if flipped > 100*time.Millisecond {
		t.Errorf("/readyz turned 503 %v after SIGTERM, want within 100 ms", flipped)
	}
	// Within the drain delay the server still serves peers.
	ctx := testContext(t, 10*time.Second)
	local := netip.MustParseAddrPort("127.0.0.1:0")
	if _, err := rendezvous.MappedAddress(ctx, addr, local); err != nil && time.Since(sent) < delay-500*time.Millisecond {
		t.Errorf("Binding during the drain delay: %v", err)
	}
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after the drain, want 0; stderr:\n%s", code, p.stderr.String())
	}
	if el := time.Since(sent); el < delay {
		t.Errorf("exited %v after SIGTERM, before the %v drain delay", el, delay)
	}
}

// Without a drain delay, SIGTERM ends the process by itself, promptly.
func TestServeDrainEndsByItself(t *testing.T) {
	p := start(t, nil, nil, io.Discard, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	p.waitStderr(`admin=(\S+)`, 30*time.Second)
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

func requireHAProxy(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		msg := "haproxy not found: install with `apt-get install haproxy` (or `make deps` as root)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the PROXY protocol test must run in CI)")
		}
		t.Skip(msg)
	}
	return path
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startHAProxy runs HAProxy in TCP mode on loopback in front of backend,
// sending a PROXY v2 header on every connection, and returns its address
// once it accepts.
func startHAProxy(t *testing.T, bin, backend string) string {
	t.Helper()
	front := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend rendezvous
    bind %s
    default_backend tcpunch
backend tcpunch
    server s1 %s send-proxy-v2
`, front, backend)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, done: make(chan struct{}), stderr: &syncBuffer{}}
	p.cmd = exec.Command(bin, "-db", "-f", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("haproxy output:\n%s", p.stderr.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", front, time.Second)
		if err == nil {
			c.Close()
			return front
		}
		select {
		case <-p.done:
			t.Fatalf("haproxy exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not accept on %s: %v", front, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bindingAfter sends raw bytes then a STUN Binding request from src and
// reports whether a response came back (false: the server closed).
func bindingAfter(t *testing.T, server, src string, prefix []byte) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(prefix, req.Raw...))
	n, err := io.ReadFull(c, make([]byte, 20))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("neither an answer nor a close within 10 s")
	}
	return n == 20
}

// Behind a real HAProxy with send-proxy-v2, each peer's observed endpoint
// is its own, not HAProxy's; without a header from the trusted HAProxy
// address, and with a header from any other, the connection is refused.
func TestServeBehindHAProxy(t *testing.T) {
	bin := requireHAProxy(t)
	// HAProxy reaches the server from 127.0.0.1; the peers use 127.0.0.2
	// and 127.0.0.3, so the two kinds of source can be told apart.
	p := start(t, nil, nil, io.Discard, "serve", "--listen", "127.0.0.1:0",
		"--proxy-protocol-from", "127.0.0.1/32", "--proxy-header-timeout", "2s")
	addr := p.waitStderr(`msg=listening addr=(\S+)`, 30*time.Second)
	front := startHAProxy(t, bin, addr)

	ctx := testContext(t, 60*time.Second)
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		local := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(freePort(t, ip)))
		got, err := rendezvous.MappedAddress(ctx, front, local)
		if err != nil {
			t.Fatalf("Binding through HAProxy from %v: %v\nserver:\n%s", local, err, p.stderr.String())
		}
		if got != local {
			t.Errorf("observed endpoint through HAProxy = %v, want the peer's own %v", got, local)
		}
	}

	// Trusted source, no header: refused.
	if bindingAfter(t, addr, "127.0.0.1", nil) {
		t.Error("a connection from the trusted address without a PROXY header was answered")
	}
	// Untrusted source with a header claiming another address: refused.
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 4242},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 3478}}
	raw, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	if bindingAfter(t, addr, "127.0.0.2", raw) {
		t.Error("a PROXY header from an untrusted address was accepted")
	}
	// Untrusted source without a header: an ordinary client, its own
	// endpoint observed.
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), uint16(freePort(t, "127.0.0.3")))
	if got, err := rendezvous.MappedAddress(ctx, addr, local); err != nil || got != local {
		t.Errorf("direct Binding from %v = %v, %v; want its own endpoint", local, got, err)
	}
}

// With --admin, /metrics answers in the Prometheus text format with the
// PROXY outcomes of the connections above counted.
func TestServeMetricsCountProxyOutcomes(t *testing.T) {
	p := start(t, nil, nil, io.Discard, "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--proxy-protocol-from", "127.0.0.1/32")
	addr := p.waitStderr(`msg=listening addr=(\S+)`, 30*time.Second)
	admin := p.waitStderr(`admin=(\S+)`, 30*time.Second)
	bindingAfter(t, addr, "127.0.0.1", nil) // missing
	bindingAfter(t, addr, "127.0.0.2", nil) // direct
	fams := scrapeMetrics(t, "http://"+admin+"/metrics")
	got := map[string]float64{}
	for _, m := range fams["tcpunch_proxy_protocol_headers_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" {
				got[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["missing"] != 1 || got["direct"] != 1 {
		t.Fatalf("tcpunch_proxy_protocol_headers_total = %v, want missing 1, direct 1", got)
	}
	if _, ok := fams["tcpunch_build_info"]; !ok {
		t.Error("no tcpunch_build_info")
	}
}

// scrapeMetrics fetches url and parses it with the Prometheus text parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}
