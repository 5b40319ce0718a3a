package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tcpunch/tcpunch/internal/metrics"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// scrape fetches url over HTTP and parses the exposition with the
// Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the exposition of %s: %v", url, err)
	}
	return fams
}

// find returns the metric of family name whose labels include want.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s with labels %v; have %v", name, want, f.GetMetric())
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

func TestMetricsExposition(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	defer srv.Close()

	m.ConnAccepted(rendezvous.FamilyIPv4, rendezvous.RefusedNone)
	m.ConnAccepted(rendezvous.FamilyIPv4, rendezvous.RefusedNone)
	m.ConnAccepted(rendezvous.FamilyIPv6, rendezvous.RefusedNone)
	m.ConnAccepted(rendezvous.FamilyIPv4, rendezvous.RefusedPerIP)
	m.ConnClosed(rendezvous.FamilyIPv4, 3*time.Second)
	m.Request(rendezvous.MethodRegisterRequest, 0)
	m.Request(rendezvous.MethodRegisterRequest, rendezvous.CodeNameTaken)
	m.Request(rendezvous.MethodConnectRequest, rendezvous.CodeUnknownName)
	m.Request(rendezvous.MethodBindingRequest, 0)
	m.Request(rendezvous.MethodBindingRequest, 0)
	m.Request(rendezvous.MethodRelayRequest, 0)
	m.Request(rendezvous.MethodDialBackRequest, 0)
	m.Listeners(7)
	m.Refused(rendezvous.RefusedPerIP)
	m.Paired(rendezvous.Pairing{Latency: 3 * time.Millisecond, Skew: 200 * time.Microsecond, RTTSource: "kernel"})
	m.RelayStarted()
	m.RelayStarted()
	m.RelayEnded(rendezvous.RelaySession{BytesUp: 1000, BytesDown: 250, Duration: time.Minute, Reason: rendezvous.RelayEndByteLimit})
	m.PunchReported(rendezvous.PunchReport{Path: rendezvous.PathDirect, Method: rendezvous.PunchSimultaneousOpen,
		TimeToConnect: 40 * time.Millisecond, Attempts: 1, LocalNAT: rendezvous.NATClass{Mapping: rendezvous.MappingEndpointIndependent, Filtering: rendezvous.FilteringSilent},
		PeerNAT: rendezvous.NATClass{Mapping: rendezvous.MappingNone, Filtering: rendezvous.FilteringAccepted}})
	m.PunchReported(rendezvous.PunchReport{Path: rendezvous.PathFailed, Method: rendezvous.PunchNone, Attempts: 12})
	m.ProxyHeader("missing")
	m.Draining()

	fams := scrape(t, srv.URL)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tcpunch_connections_open", map[string]string{"family": "ipv4"}, 1},
		{"tcpunch_connections_open", map[string]string{"family": "ipv6"}, 1},
		{"tcpunch_connections_accepted_total", map[string]string{"family": "ipv4", "result": "served"}, 2},
		{"tcpunch_connections_accepted_total", map[string]string{"family": "ipv4", "result": "per_ip_limit"}, 1},
		{"tcpunch_requests_total", map[string]string{"method": "register", "result": "ok"}, 1},
		{"tcpunch_requests_total", map[string]string{"method": "register", "result": "name_taken"}, 1},
		{"tcpunch_requests_total", map[string]string{"method": "connect", "result": "unknown_name"}, 1},
		{"tcpunch_requests_total", map[string]string{"method": "binding", "result": "ok"}, 2},
		{"tcpunch_requests_total", map[string]string{"method": "relay", "result": "ok"}, 1},
		{"tcpunch_requests_total", map[string]string{"method": "dialback", "result": "ok"}, 1},
		{"tcpunch_listeners_registered", nil, 7},
		{"tcpunch_refusals_total", map[string]string{"reason": "per_ip_limit"}, 1},
		{"tcpunch_relay_sessions_active", nil, 1},
		{"tcpunch_relay_sessions_total", map[string]string{"reason": "byte_limit"}, 1},
		{"tcpunch_relay_bytes_total", map[string]string{"direction": "up"}, 1000},
		{"tcpunch_relay_bytes_total", map[string]string{"direction": "down"}, 250},
		{"tcpunch_punch_reports_total", map[string]string{"path": "direct", "method": "simultaneous-open", "local_nat": "endpoint-independent", "peer_nat": "none"}, 1},
		{"tcpunch_punch_reports_total", map[string]string{"path": "failed", "method": "none", "local_nat": "unknown", "peer_nat": "unknown"}, 1},
		{"tcpunch_proxy_protocol_headers_total", map[string]string{"result": "missing"}, 1},
		{"tcpunch_draining", nil, 1},
		{"tcpunch_build_info", map[string]string{"goversion": runtime.Version()}, 1},
	}
	for _, c := range checks {
		if got := value(find(t, fams, c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	hists := []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
	}{
		{"tcpunch_pairing_latency_seconds", nil, 1, 0.003},
		{"tcpunch_pairing_start_skew_seconds", map[string]string{"rtt_source": "kernel"}, 1, 0.0002},
		{"tcpunch_connection_duration_seconds", nil, 1, 3},
		{"tcpunch_relay_session_duration_seconds", nil, 1, 60},
		{"tcpunch_punch_time_to_connect_seconds", map[string]string{"path": "direct"}, 1, 0.04},
		{"tcpunch_punch_attempts", map[string]string{"path": "failed"}, 1, 12},
	}
	for _, h := range hists {
		got := find(t, fams, h.name, h.labels).GetHistogram()
		if got.GetSampleCount() != h.count || !near(got.GetSampleSum(), h.sum) {
			t.Errorf("%s%v: count %d sum %v, want %d and %v", h.name, h.labels, got.GetSampleCount(), got.GetSampleSum(), h.count, h.sum)
		}
	}
	// The runtime and process collectors are there: descriptors against
	// LimitNOFILE, memory.
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_max_fds"} {
		if _, ok := fams[name]; !ok && (runtime.GOOS == "linux" || name == "go_goroutines") {
			t.Errorf("no %s", name)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// A value outside a label's fixed set (a client's report, a future code)
// lands in "other": no input can mint a new series.
func TestMetricsLabelsStayInTheirSets(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{}))
	defer srv.Close()

	for i := range 100 {
		bogus := "x" + string(rune('a'+i%26)) + time.Duration(i).String()
		m.PunchReported(rendezvous.PunchReport{Path: rendezvous.PunchPath(bogus), Method: rendezvous.PunchMethod(bogus),
			LocalNAT: rendezvous.NATClass{Mapping: rendezvous.Mapping(100 + i), Filtering: rendezvous.Filtering(i)},
			PeerNAT:  rendezvous.NATClass{Mapping: rendezvous.Mapping(100 + i)}})
		m.Request(rendezvous.RequestMethod(bogus), 1000+i)
		m.ConnAccepted(rendezvous.Family(bogus), rendezvous.Refusal(bogus))
		m.Paired(rendezvous.Pairing{RTTSource: bogus})
		m.ProxyHeader(bogus)
	}
	m.Request(rendezvous.MethodConnectRequest, 599)

	fams := scrape(t, srv.URL)
	for name, want := range map[string]int{
		"tcpunch_punch_reports_total":          1,
		"tcpunch_requests_total":               2,
		"tcpunch_connections_accepted_total":   1,
		"tcpunch_pairing_start_skew_seconds":   1,
		"tcpunch_proxy_protocol_headers_total": 1,
	} {
		if got := len(fams[name].GetMetric()); got != want {
			t.Errorf("%s has %d series after 100 distinct bogus values, want %d: %v", name, got, want, fams[name].GetMetric())
		}
	}
	if got := value(find(t, fams, "tcpunch_punch_reports_total",
		map[string]string{"path": "other", "method": "other", "local_nat": "unknown", "peer_nat": "unknown"})); got != 100 {
		t.Errorf("bogus reports counted %v, want 100", got)
	}
	if got := value(find(t, fams, "tcpunch_requests_total", map[string]string{"method": "other", "result": "other"})); got != 100 {
		t.Errorf("bogus requests counted %v, want 100", got)
	}
	find(t, fams, "tcpunch_requests_total", map[string]string{"method": "connect", "result": "code_5xx"})
}
