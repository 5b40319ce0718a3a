package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tcpunch/tcpunch/rendezvous"
)

const namespace = "tcpunch"

// Metrics is the Prometheus implementation of [rendezvous.Tracer]. Create
// it with [New]; it is safe for concurrent use and never blocks.
type Metrics struct {
	reg *prometheus.Registry

	connsOpen     *prometheus.GaugeVec
	connsAccepted *prometheus.CounterVec
	connHeld      prometheus.Histogram
	requests      *prometheus.CounterVec
	listeners     prometheus.Gauge
	refusals      *prometheus.CounterVec
	pairLatency   prometheus.Histogram
	pairSkew      *prometheus.HistogramVec

	relayActive   prometheus.Gauge
	relaySessions *prometheus.CounterVec
	relayBytes    *prometheus.CounterVec
	relayDuration prometheus.Histogram

	punchReports  *prometheus.CounterVec
	punchTime     *prometheus.HistogramVec
	punchAttempts *prometheus.HistogramVec

	proxyHeaders *prometheus.CounterVec
	draining     prometheus.Gauge
}

var _ rendezvous.Tracer = (*Metrics)(nil)

// New returns metrics registered on a registry of their own, together with
// the Go runtime and process collectors (descriptors against LimitNOFILE,
// memory, GC) and tcpunch_build_info.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}

	m.connsOpen = f.gaugeVec("connections_open", "Client connections held now.", "family")
	m.connsAccepted = f.counterVec("connections_accepted_total",
		"Connections taken from the listener, by result: served, or the refusal reason.", "family", "result")
	m.connHeld = f.histogram("connection_duration_seconds", "How long served connections were held.",
		prometheus.ExponentialBucketsRange(0.01, 86400, 12))
	m.requests = f.counterVec("requests_total",
		"Requests answered, by method and result (ok or the error sent).", "method", "result")
	m.listeners = f.gauge("listeners_registered", "Names registered now (listeners online).")
	m.refusals = f.counterVec("refusals_total", "Connections and requests refused by a limit or a drain, by reason.", "reason")
	m.pairLatency = f.histogram("pairing_latency_seconds",
		"From a Connect request to the second peer-info written.",
		prometheus.ExponentialBucketsRange(0.0001, 5, 16))
	m.pairSkew = f.histogramVec("pairing_start_skew_seconds",
		"The server's estimate of how far apart the two peer-infos arrive (synchronized start error), by where the RTTs came from.",
		prometheus.ExponentialBucketsRange(0.00001, 1, 16), "rtt_source")

	m.relayActive = f.gauge("relay_sessions_active", "Relayed sessions now.")
	m.relaySessions = f.counterVec("relay_sessions_total", "Relayed sessions ended, by why they ended.", "reason")
	m.relayBytes = f.counterVec("relay_bytes_total", "Bytes relayed, by direction (up: dialer to listener).", "direction")
	m.relayDuration = f.histogram("relay_session_duration_seconds", "How long relayed sessions lasted.",
		prometheus.ExponentialBucketsRange(0.1, 86400, 12))

	m.punchReports = f.counterVec("punch_reports_total",
		"Punch outcomes reported by clients: path (direct, relay, failed), method, and the NAT classes.",
		"path", "method", "local_nat", "peer_nat")
	m.punchTime = f.histogramVec("punch_time_to_connect_seconds", "Reported time to connect, by path.",
		prometheus.ExponentialBucketsRange(0.001, 30, 16), "path")
	m.punchAttempts = f.histogramVec("punch_attempts", "Reported attempts per punch, by path.",
		[]float64{1, 2, 3, 5, 8, 13, 21, 50, 100}, "path")

	m.proxyHeaders = f.counterVec("proxy_protocol_headers_total",
		"PROXY protocol outcomes at the listener: ok (header from a trusted source), local (its health check), direct (no header from another source), missing, invalid, untrusted (a header from a source not trusted), overload.", "result")
	m.draining = f.gauge("draining", "1 once a drain (SIGTERM) has started.")

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	return m
}

// Registry is where the metrics are registered, for the /metrics handler
// (and for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ConnAccepted implements [rendezvous.Tracer].
func (m *Metrics) ConnAccepted(fam rendezvous.Family, refused rendezvous.Refusal) {
	result := "served"
	if refused != rendezvous.RefusedNone {
		result = refusal(refused)
	} else {
		m.connsOpen.WithLabelValues(family(fam)).Inc()
	}
	m.connsAccepted.WithLabelValues(family(fam), result).Inc()
}

// ConnClosed implements [rendezvous.Tracer].
func (m *Metrics) ConnClosed(fam rendezvous.Family, held time.Duration) {
	m.connsOpen.WithLabelValues(family(fam)).Dec()
	m.connHeld.Observe(held.Seconds())
}

// Request implements [rendezvous.Tracer].
func (m *Metrics) Request(method rendezvous.RequestMethod, code int) {
	m.requests.WithLabelValues(requestMethod(method), result(code)).Inc()
}

// Listeners implements [rendezvous.Tracer].
func (m *Metrics) Listeners(n int) { m.listeners.Set(float64(n)) }

// Refused implements [rendezvous.Tracer].
func (m *Metrics) Refused(reason rendezvous.Refusal) {
	m.refusals.WithLabelValues(refusal(reason)).Inc()
}

// Paired implements [rendezvous.Tracer].
func (m *Metrics) Paired(p rendezvous.Pairing) {
	m.pairLatency.Observe(p.Latency.Seconds())
	m.pairSkew.WithLabelValues(rttSource(p.RTTSource)).Observe(p.Skew.Seconds())
}

// RelayStarted implements [rendezvous.Tracer].
func (m *Metrics) RelayStarted() { m.relayActive.Inc() }

// RelayEnded implements [rendezvous.Tracer].
func (m *Metrics) RelayEnded(s rendezvous.RelaySession) {
	m.relayActive.Dec()
	m.relaySessions.WithLabelValues(relayEnd(s.Reason)).Inc()
	m.relayBytes.WithLabelValues("up").Add(float64(max(s.BytesUp, 0)))
	m.relayBytes.WithLabelValues("down").Add(float64(max(s.BytesDown, 0)))
	m.relayDuration.Observe(s.Duration.Seconds())
}

// PunchReported implements [rendezvous.Tracer].
func (m *Metrics) PunchReported(r rendezvous.PunchReport) {
	path := punchPath(r.Path)
	m.punchReports.WithLabelValues(path, punchMethod(r.Method), natClass(r.LocalNAT), natClass(r.PeerNAT)).Inc()
	if r.TimeToConnect > 0 {
		m.punchTime.WithLabelValues(path).Observe(r.TimeToConnect.Seconds())
	}
	if r.Attempts > 0 {
		m.punchAttempts.WithLabelValues(path).Observe(float64(r.Attempts))
	}
}

// ProxyHeader counts one PROXY protocol outcome at the listener (package
// ingress): ok, local, direct, missing, invalid, untrusted or overload.
func (m *Metrics) ProxyHeader(res string) {
	switch res {
	case "ok", "local", "direct", "missing", "invalid", "untrusted", "overload":
	default:
		res = "other"
	}
	m.proxyHeaders.WithLabelValues(res).Inc()
}

// Draining records that a drain has started.
func (m *Metrics) Draining() { m.draining.Set(1) }

// The label sets. Anything outside them is "other": the tracer's callers
// are trusted, but a client-reported value must never mint a series.

func family(f rendezvous.Family) string {
	switch f {
	case rendezvous.FamilyIPv4, rendezvous.FamilyIPv6:
		return string(f)
	}
	return "other"
}

func refusal(r rendezvous.Refusal) string {
	switch r {
	case rendezvous.RefusedPerIP, rendezvous.RefusedCapacity, rendezvous.RefusedRateLimit, rendezvous.RefusedShuttingDown:
		return string(r)
	}
	return "other"
}

func requestMethod(m rendezvous.RequestMethod) string {
	switch m {
	case rendezvous.MethodBindingRequest, rendezvous.MethodRegisterRequest, rendezvous.MethodConnectRequest, rendezvous.MethodPingRequest,
		rendezvous.MethodRelayRequest, rendezvous.MethodDialBackRequest:
		return string(m)
	}
	return "other"
}

// result names an ERROR-CODE; 0 is a success.
func result(code int) string {
	switch code {
	case 0:
		return "ok"
	case rendezvous.CodeBadRequest:
		return "bad_request"
	case rendezvous.CodeUnknownName:
		return "unknown_name"
	case rendezvous.CodeNameTaken:
		return "name_taken"
	case rendezvous.CodeUnknownAttribute:
		return "unknown_attribute"
	case rendezvous.CodeTooManyConns:
		return "per_ip_limit"
	case rendezvous.CodeServerError:
		return "server_error"
	case rendezvous.CodeShuttingDown:
		return "shutting_down"
	case rendezvous.CodeCapacity:
		return "capacity"
	}
	if code >= 300 && code <= 699 { // the STUN range: its class
		return "code_" + strconv.Itoa(code/100) + "xx"
	}
	return "other"
}

func rttSource(s string) string {
	switch s {
	case "kernel", "ping", "last-ping":
		return s
	}
	return "other"
}

func relayEnd(r rendezvous.RelayEnd) string {
	switch r {
	case rendezvous.RelayEndClosed, rendezvous.RelayEndIdle, rendezvous.RelayEndByteLimit,
		rendezvous.RelayEndTimeLimit, rendezvous.RelayEndShuttingDown, rendezvous.RelayEndError:
		return string(r)
	}
	return "other"
}

func punchPath(p rendezvous.PunchPath) string {
	switch p {
	case rendezvous.PathDirect, rendezvous.PathRelay, rendezvous.PathFailed:
		return string(p)
	}
	return "other"
}

func punchMethod(m rendezvous.PunchMethod) string {
	switch m {
	case rendezvous.PunchSimultaneousOpen, rendezvous.PunchAccept, rendezvous.PunchConnect, rendezvous.PunchNone:
		return string(m)
	}
	return "other"
}

// natClass reduces a measured class to the label set: its mapping is what
// decides whether a peer can be reached, and the set stays four values
// whatever a client reports.
func natClass(c rendezvous.NATClass) string {
	switch {
	case c.Mapping == rendezvous.MappingNone:
		return "none"
	case c.Mapping == rendezvous.MappingEndpointIndependent:
		return "endpoint-independent"
	case c.Mapping.Symmetric():
		return "symmetric"
	}
	return "unknown"
}
