package rendezvous

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// recorder is a Tracer that keeps what it is told.
type recorder struct {
	NopTracer
	mu        sync.Mutex
	accepted  map[string]int // family/refusal
	closed    int
	requests  map[string]int // method/code
	listeners []int
	refused   map[Refusal]int
	pairings  []Pairing
	reports   []PunchReport
}

func newRecorder() *recorder {
	return &recorder{accepted: map[string]int{}, requests: map[string]int{}, refused: map[Refusal]int{}}
}

func (r *recorder) ConnAccepted(f Family, why Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted[fmt.Sprintf("%s/%s", f, why)]++
}

func (r *recorder) ConnClosed(Family, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
}

func (r *recorder) Request(m RequestMethod, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[fmt.Sprintf("%s/%d", m, code)]++
}

func (r *recorder) Listeners(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listeners = append(r.listeners, n)
}

func (r *recorder) Refused(why Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused[why]++
}

func (r *recorder) Paired(p Pairing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairings = append(r.pairings, p)
}

func (r *recorder) PunchReported(p PunchReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, p)
}

// eventually polls cond (under r.mu) until it holds or 10 s pass.
func (r *recorder) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: not within 10 s; recorded accepted=%v closed=%d requests=%v listeners=%v refused=%v pairings=%v reports=%v",
				what, r.accepted, r.closed, r.requests, r.listeners, r.refused, r.pairings, r.reports)
		}
	}
}

func TestTracerSeesServerEvents(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder()
	_, addr := startServer(t, WithTracer(rec))

	reg, err := Register(ctx, addr, reusedPort(t), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, closer, err := Connect(ctx, addr, reusedPort(t), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Connect(ctx, addr, anyLocal, "nobody", nil); err == nil {
		t.Fatal("Connect to an unknown name succeeded")
	}
	if _, err := MappedAddress(ctx, addr, anyLocal); err != nil {
		t.Fatal(err)
	}
	raw := dialRaw(t, addr)
	raw.send(&message{Type: stun.NewType(0xABC, stun.ClassRequest), TxID: newTxID()}) // unknown method: 400
	if m, _, err := raw.recv(); err != nil || m.Code != CodeBadRequest {
		t.Fatalf("unknown method: %v %v", m, err)
	}
	closer.Close()
	reg.Close()
	raw.nc.Close()

	rec.eventually(t, "every connection closed and the name freed", func() bool {
		return rec.accepted["ipv4/"] == rec.closed && slices.Equal(rec.listeners, []int{1, 0})
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.accepted["ipv4/"]; got != 5 {
		t.Errorf("served connections = %d, want 5 (listener, dialer, dialer to nobody, binding, raw)", got)
	}
	for key, want := range map[string]int{"register/0": 1, "connect/0": 1, "connect/404": 1, "binding/0": 1, "other/400": 1} {
		if rec.requests[key] != want {
			t.Errorf("requests[%s] = %d, want %d (all: %v)", key, rec.requests[key], want, rec.requests)
		}
	}
	if len(rec.pairings) != 1 {
		t.Fatalf("pairings = %v, want one", rec.pairings)
	}
	p := rec.pairings[0]
	if p.Latency <= 0 || p.Latency > 10*time.Second || p.Skew < 0 || p.Skew > 5*time.Second {
		t.Errorf("pairing %+v: latency or skew out of range", p)
	}
	if !slices.Contains([]string{"kernel", "ping", "last-ping"}, p.RTTSource) {
		t.Errorf("pairing RTT source %q", p.RTTSource)
	}
}

func TestTracerSeesLimitRefusals(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, WithTracer(rec), WithMaxConnsPerIP(1))
	first := dialRaw(t, addr)
	first.send(&message{Type: stun.BindingRequest, TxID: newTxID()})
	if _, _, err := first.recv(); err != nil {
		t.Fatal(err)
	}
	second := dialRaw(t, addr)
	if m, _, err := second.recv(); err != nil || m.Type.Method != methodGoodbye || m.Code != CodeTooManyConns {
		t.Fatalf("second connection from one IP: %v %v, want Goodbye 429", m, err)
	}
	rec.eventually(t, "the refusal counted", func() bool {
		return rec.accepted["ipv4/per_ip_limit"] == 1 && rec.refused[RefusedPerIP] == 1
	})
}

// pairRaw registers name on one raw connection and connects to it from
// another; it returns both and the session tag.
func pairRaw(t *testing.T, addr, name string) (l, d *rawConn, tag [16]byte) {
	t.Helper()
	l, d = dialRaw(t, addr), dialRaw(t, addr)
	l.send(&message{Type: stun.NewType(methodRegister, stun.ClassRequest), TxID: newTxID(), Name: name})
	if m, _, err := l.recv(); err != nil || m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("register: %v %v", m, err)
	}
	d.send(&message{Type: stun.NewType(methodConnect, stun.ClassRequest), TxID: newTxID(), Name: name})
	m, _, err := d.recv()
	if err != nil || m.Type.Class != stun.ClassSuccessResponse || !m.HasTag {
		t.Fatalf("connect: %v %v", m, err)
	}
	if pi, _, err := l.recv(); err != nil || pi.Tag != m.Tag {
		t.Fatalf("peer info: %v %v", pi, err)
	}
	return l, d, m.Tag
}

// ping returns once the server answered a Ping on c: everything c sent
// before has been handled (a connection's messages are handled in order).
func (c *rawConn) ping() {
	c.t.Helper()
	id := newTxID()
	c.send(&message{Type: stun.NewType(methodPing, stun.ClassRequest), TxID: id})
	for {
		m, _, err := c.recv()
		if err != nil {
			c.t.Fatalf("ping after a report: %v (the report must not close the connection)", err)
		}
		if m.TxID == id {
			return
		}
	}
}

// sendRaw writes b as it is.
func (c *rawConn) sendBytes(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// reportBytes encodes a PunchReport for tag with the report attributes
// given as raw (type, value) pairs, so tests can send what no client would.
func reportBytes(t *testing.T, tag [16]byte, attrs ...stun.RawAttribute) []byte {
	t.Helper()
	m := &stun.Message{Type: stun.NewType(methodReport, stun.ClassIndication), TransactionID: newTxID()}
	m.WriteHeader()
	m.Add(attrSessionTag, tag[:])
	for _, a := range attrs {
		m.Add(a.Type, a.Value)
	}
	return m.Raw
}

func TestPunchReportsCountedOncePerSession(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, WithTracer(rec))
	l, d, tag := pairRaw(t, addr, "alice")

	direct := PunchReport{Path: PathDirect, Method: PunchSimultaneousOpen, TimeToConnect: 1234 * time.Microsecond,
		Attempts: 3, LocalNAT: NATClass{Mapping: MappingEndpointIndependent}}
	d.send(reportMessage(tag, direct))
	d.send(reportMessage(tag, direct)) // the same session again: ignored
	d.ping()
	l.send(reportMessage(tag, PunchReport{Path: PathDirect, Method: PunchAccept, Attempts: 1}))
	l.ping()
	var other [16]byte
	other[0] = 1
	l.send(reportMessage(other, direct)) // a session the server never paired l in
	l.ping()
	stranger := dialRaw(t, addr)
	stranger.send(reportMessage(tag, direct)) // not a connection of the session
	stranger.ping()

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reports) != 2 {
		t.Fatalf("reports = %+v, want the dialer's and the listener's first only", rec.reports)
	}
	if rec.reports[0] != direct {
		t.Errorf("dialer's report arrived as %+v, want %+v", rec.reports[0], direct)
	}
	if got := rec.reports[1]; got.Path != PathDirect || got.Method != PunchAccept || got.Attempts != 1 {
		t.Errorf("listener's report arrived as %+v", got)
	}
}

// Malformed, oversized or odd reports are ignored or mapped onto the fixed
// sets; none closes the connection (ping checks that).
func TestPunchReportsBadInputIgnored(t *testing.T) {
	rec := newRecorder()
	_, addr := startServer(t, WithTracer(rec))
	a := func(typ stun.AttrType, v ...byte) stun.RawAttribute { return stun.RawAttribute{Type: typ, Value: v} }
	for _, tc := range []struct {
		name  string
		attrs []stun.RawAttribute
		want  *PunchReport // nil: ignored
	}{
		{"no path", []stun.RawAttribute{a(attrPunchMethod, 1)}, nil},
		{"path 0", []stun.RawAttribute{a(attrPunchPath, 0)}, nil},
		{"unknown path", []stun.RawAttribute{a(attrPunchPath, 9)}, nil},
		{"path of 2 bytes", []stun.RawAttribute{a(attrPunchPath, 1, 1)}, nil},
		{"path twice", []stun.RawAttribute{a(attrPunchPath, 1), a(attrPunchPath, 1)}, nil},
		{"short time", []stun.RawAttribute{a(attrPunchPath, 1), a(attrPunchTime, 1, 2)}, nil},
		{"short NAT classes", []stun.RawAttribute{a(attrPunchPath, 1), a(attrNATClasses, 1)}, nil},
		{"unknown required attribute", []stun.RawAttribute{a(attrPunchPath, 1), a(0x7C3F, 1)}, nil},
		{"oversized", []stun.RawAttribute{a(attrPunchPath, 1), {Type: stun.AttrSoftware, Value: make([]byte, 300)}}, nil},
		{"unknown method and NAT values", []stun.RawAttribute{a(attrPunchPath, 3), a(attrPunchMethod, 200),
			a(attrNATClasses, 9, 250), a(attrPunchAttempts, 0xFF, 0xFF), a(attrPunchTime, 0xFF, 0xFF, 0xFF, 0xFF)},
			&PunchReport{Path: PathFailed, Method: PunchOther,
				Attempts: 0xFFFF, TimeToConnect: 0xFFFFFFFF * time.Microsecond}},
		{"path alone", []stun.RawAttribute{a(attrPunchPath, 2)},
			&PunchReport{Path: PathRelay, Method: PunchNone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d, tag := pairRaw(t, addr, "n"+fmt.Sprint(time.Now().UnixNano()))
			rec.mu.Lock()
			before := len(rec.reports)
			rec.mu.Unlock()
			d.sendBytes(reportBytes(t, tag, tc.attrs...))
			d.ping()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			got := rec.reports[before:]
			switch {
			case tc.want == nil && len(got) != 0:
				t.Errorf("counted %+v, want it ignored", got)
			case tc.want != nil && (len(got) != 1 || got[0] != *tc.want):
				t.Errorf("counted %+v, want %+v", got, *tc.want)
			}
		})
	}
}

// The client API: a Registration and the closer of Connect report over
// their control connections.
func TestReporterClientAPI(t *testing.T) {
	ctx := testCtx(t)
	rec := newRecorder()
	_, addr := startServer(t, WithTracer(rec))
	reg, err := Register(ctx, addr, reusedPort(t), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pi, closer, err := Connect(ctx, addr, reusedPort(t), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Next(ctx); err != nil {
		t.Fatal(err)
	}
	rep, ok := closer.(Reporter)
	if !ok {
		t.Fatalf("Connect's closer %T is not a Reporter", closer)
	}
	if err := rep.Report(ctx, pi.Tag, PunchReport{Path: PathDirect, Method: PunchConnect, Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	closer.Close() // a reset right after the write: the report is ahead of it
	if err := reg.Report(ctx, pi.Tag, PunchReport{Path: PathDirect, Method: PunchAccept, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	rec.eventually(t, "both reports counted", func() bool { return len(rec.reports) == 2 })
	reg.Close()
	if err := reg.Report(ctx, pi.Tag, PunchReport{Path: PathDirect}); err == nil {
		t.Error("Report after Close succeeded")
	}
}

func TestReportWireValues(t *testing.T) {
	if got := stun.NewType(methodReport, stun.ClassIndication).Value(); got != 0x3070 {
		t.Errorf("PunchReport indication = %#04x, want 0x3070", got)
	}
	for _, a := range []stun.AttrType{attrPunchPath, attrPunchMethod, attrPunchTime, attrPunchAttempts, attrNATClasses} {
		if !a.Required() || !understood(a) {
			t.Errorf("%#x must be comprehension-required and understood", uint16(a))
		}
	}
	// A report is 80 bytes: header, SESSION-TAG and the five attributes.
	b := encodeForTest(t, reportMessage([16]byte{1}, PunchReport{Path: PathDirect, Method: PunchAccept}))
	if len(b) != 80 || len(b) > maxReportSize {
		t.Errorf("report is %d bytes, want 80", len(b))
	}
	msg, unknown, err := decodeMessage(b)
	if err != nil || len(unknown) > 0 || msg.Report == nil || msg.Report.bad || msg.Report.r.Path != PathDirect {
		t.Errorf("decoded %+v %v %v", msg, unknown, err)
	}
}
