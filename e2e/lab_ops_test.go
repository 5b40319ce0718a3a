//go:build linux

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The operator's view of real punches: `tcpunch serve --admin` on the
// lab's rendezvous host, peers behind real NATs, /metrics scraped from
// inside the lab and parsed with the Prometheus text parser.

const adminPort = 9478

// labScraper fetches /metrics from a server inside h's namespace.
func labScraper(h *natlab.Host, admin string) func(t *testing.T) map[string]*dto.MetricFamily {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.Dial(ctx, network, addr)
		},
	}}
	return func(t *testing.T) map[string]*dto.MetricFamily {
		t.Helper()
		resp, err := client.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatalf("scraping %s: %v", admin, err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("parsing /metrics: %v", err)
		}
		return fams
	}
}

// metricValue sums the samples of family name whose labels include want
// (counters and gauges: the value; histograms: the sample count).
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range fams[name].GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				match++
			}
		}
		if match != len(want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// punchInLab runs listen in one peer and dial in the other with extra args
// on both, pipes 64 KiB each way and checks both exit 0.
func punchInLab(t *testing.T, p *natlab.Pair, rv, name string, extra ...string) (listener, dialer *proc) {
	t.Helper()
	const size = 64 << 10
	args := func(cmd string) []string {
		return append(append([]string{cmd, "-r", rv, "--report", "json", "--timeout=" + directTimeout.String()}, extra...), name)
	}
	l := start(t, in(p.A), stream(1, size), io.Discard, args("listen")...)
	l.waitStderr(`listening as`, 30*time.Second)
	d := start(t, in(p.B), stream(2, size), io.Discard, args("dial")...)
	if code := d.wait(runBudget); code != 0 {
		diagnose(t, p)
		t.Fatalf("dial exit %d; stderr:\n%s", code, d.stderr.String())
	}
	if code := l.wait(runBudget); code != 0 {
		t.Fatalf("listen exit %d; stderr:\n%s", code, l.stderr.String())
	}
	return l, d
}

func dropDropLab(t *testing.T) *natlab.Pair {
	drop := natlab.Side{NAT: natlab.NATDrop}
	return cell{Scenario: natlab.Scenario{Name: "drop×drop", A: drop, B: drop, Direct: true}}.build(t)
}

// After real punches through two NATs, /metrics counts them: the listener
// online while it waited, the Register and Connect answers, one pairing per
// punch, and each peer's outcome report (direct), except for the punch run
// with --no-report.
func TestLabMetricsAfterPunches(t *testing.T) {
	natlab.Require(t)
	t.Parallel()
	p := dropDropLab(t)
	rv := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort).String()
	admin := netip.AddrPortFrom(p.RendezvousAddr(), adminPort).String()
	srv := start(t, in(p.Rendezvous()), nil, io.Discard, "serve", "--listen", rv, "--admin", admin)
	srv.waitStderr(`admin endpoints up`, 30*time.Second)
	scrape := labScraper(p.Rendezvous(), admin)

	// One listener waiting: online.
	l := start(t, in(p.A), nil, io.Discard, "listen", "-r", rv, "waiting")
	l.waitStderr(`listening as`, 30*time.Second)
	if got := metricValue(scrape(t), "tcpunch_listeners_registered", nil); got != 1 {
		t.Errorf("tcpunch_listeners_registered = %v with one listener waiting, want 1", got)
	}
	l.signal(syscall.SIGINT)
	l.wait(30 * time.Second)

	const reported, quiet = 2, 1
	for i := range reported {
		punchInLab(t, p, rv, fmt.Sprintf("peer%d", i))
	}
	punchInLab(t, p, rv, "quiet", "--no-report")

	want := map[string]struct {
		labels map[string]string
		value  float64
	}{
		"reports direct":  {map[string]string{"path": "direct"}, 2 * reported},
		"reports failed":  {map[string]string{"path": "failed"}, 0},
		"register ok":     {map[string]string{"method": "register", "result": "ok"}, 1 + reported + quiet},
		"connect ok":      {map[string]string{"method": "connect", "result": "ok"}, reported + quiet},
		"pairings":        {nil, reported + quiet},
		"skew samples":    {nil, reported + quiet},
		"direct times":    {map[string]string{"path": "direct"}, 2 * reported},
		"listeners after": {nil, 0},
		"open after":      {nil, 0},
	}
	family := map[string]string{
		"reports direct": "tcpunch_punch_reports_total", "reports failed": "tcpunch_punch_reports_total",
		"register ok": "tcpunch_requests_total", "connect ok": "tcpunch_requests_total",
		"pairings": "tcpunch_pairing_latency_seconds", "skew samples": "tcpunch_pairing_start_skew_seconds",
		"direct times": "tcpunch_punch_time_to_connect_seconds", "listeners after": "tcpunch_listeners_registered",
		"open after": "tcpunch_connections_open",
	}
	// The peers have exited; their reports and closes reach the server
	// within moments. Poll, then check exact values.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams = scrape(t)
		done := true
		for k, w := range want {
			done = done && metricValue(fams, family[k], w.labels) == w.value
		}
		if done || time.Now().After(deadline) {
			break
		}
	}
	for k, w := range want {
		if got := metricValue(fams, family[k], w.labels); got != w.value {
			t.Errorf("%s: %s%v = %v, want %v", k, family[k], w.labels, got, w.value)
		}
	}
	served := metricValue(fams, "tcpunch_connections_accepted_total", map[string]string{"result": "served"})
	if served < 2*(reported+quiet)+1 {
		t.Errorf("tcpunch_connections_accepted_total{result=served} = %v, want at least %d", served, 2*(reported+quiet)+1)
	}
	t.Logf("after %d reported punches and %d unreported: reports direct=%v, pairings=%v, connect ok=%v, served conns=%v",
		reported, quiet, metricValue(fams, "tcpunch_punch_reports_total", map[string]string{"path": "direct"}),
		metricValue(fams, "tcpunch_pairing_latency_seconds", nil),
		metricValue(fams, "tcpunch_requests_total", map[string]string{"method": "connect", "result": "ok"}), served)
}

// HAProxy (TCP mode, send-proxy-v2) on the lab's rendezvous host in front
// of `serve --proxy-protocol-from`: the server observes each peer's public
// endpoint (its NAT's), not HAProxy's address, so the two peers still
// punch directly.
func TestLabPunchBehindHAProxy(t *testing.T) {
	bin := requireHAProxy(t)
	natlab.Require(t)
	t.Parallel()
	p := dropDropLab(t)
	rdv := p.Rendezvous()
	front := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort)
	back := netip.AddrPortFrom(p.RendezvousAddr(), rdvPort+1)
	admin := netip.AddrPortFrom(p.RendezvousAddr(), adminPort).String()

	// HAProxy connects to the backend from the rendezvous host's address:
	// that one source is trusted.
	srv := start(t, in(rdv), nil, io.Discard, "serve", "--listen", back.String(), "--admin", admin,
		"--proxy-protocol-from", p.RendezvousAddr().String()+"/32")
	srv.waitStderr(`admin endpoints up`, 30*time.Second)

	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend rendezvous
    bind %s
    default_backend tcpunch
backend tcpunch
    server s1 %s send-proxy-v2
`, front, back)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 5*time.Minute)
	_, hapOut := haproxyIn(ctx, t, rdv, bin, cfg)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := rdv.Dial(dctx, "tcp", front.String())
		cancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not accept on %v: %v\n%s", front, err, hapOut.String())
		}
	}

	l, d := punchInLab(t, p, front.String(), "behind-haproxy")
	// What the server observed, as each peer was told: the NATs' public
	// endpoints, never HAProxy's address.
	m := regexp.MustCompile(`public endpoint (\S+)`).FindStringSubmatch(l.stderr.String())
	if m == nil {
		t.Fatalf("no observed endpoint in the listener's output:\n%s", l.stderr.String())
	}
	lObs := unmapped(mustAddrPort(t, m[1]))
	if lObs.Addr() != publicAddr(p.A) {
		t.Errorf("the server observed the listener at %v, want its NAT's address %v (HAProxy is %v)", lObs, publicAddr(p.A), p.RendezvousAddr())
	}
	m = regexp.MustCompile(`peer found: "[^"]*" at (\S+) .*; we are (\S+)`).FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("no peer info in the dialer's output:\n%s", d.stderr.String())
	}
	if got := unmapped(mustAddrPort(t, m[1])); got != lObs {
		t.Errorf("the dialer was told the listener is at %v, want %v", got, lObs)
	}
	if dObs := unmapped(mustAddrPort(t, m[2])); dObs.Addr() != publicAddr(p.B) {
		t.Errorf("the server observed the dialer at %v, want its NAT's address %v", dObs, publicAddr(p.B))
	}
	lr, dr := parseReport(t, l.stderr.String()), parseReport(t, d.stderr.String())
	checkReport(t, p, "listener", lr, p.B, dr)
	checkReport(t, p, "dialer", dr, p.A, lr)
	if remote := mustAddrPort(t, dr.Remote); remote != lObs {
		t.Errorf("the dialer connected to %v, want the listener's observed endpoint %v", remote, lObs)
	}
	t.Logf("through HAProxy: listener observed at %v, dialer at %v; punched %s in %.1f ms", lObs, m[2], dr.Method, dr.ElapsedMS)

	// The relay behind the balancer: its legs come through HAProxy too.
	_, rd := punchInLab(t, p, front.String(), "relayed-behind-haproxy", "--relay", "always")
	if rr := parseReport(t, rd.stderr.String()); rr.Path != "relay" {
		t.Errorf("--relay always through HAProxy: path %q, want relay:\n%s", rr.Path, rd.stderr.String())
	}

	fams := labScraper(rdv, admin)(t)
	if got := metricValue(fams, "tcpunch_proxy_protocol_headers_total", map[string]string{"result": "ok"}); got < 2 {
		t.Errorf("tcpunch_proxy_protocol_headers_total{result=ok} = %v, want at least 2 (both peers through HAProxy)", got)
	}
}

// haproxyIn runs HAProxy with the config file cfg on lab host h until the
// test ends, and returns the process and its output (logged if the test
// fails).
func haproxyIn(ctx context.Context, t *testing.T, h *natlab.Host, bin, cfg string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	hap := h.Command(ctx, bin, "-db", "-f", cfg)
	out := &syncBuffer{}
	hap.Stdout, hap.Stderr = out, out
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hap.Cancel()
		hap.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	return hap, out
}
