package punch

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// reports is a rendezvous.Tracer that keeps the punch reports.
type reports struct {
	rendezvous.NopTracer
	mu  sync.Mutex
	got []rendezvous.PunchReport
}

func (r *reports) PunchReported(p rendezvous.PunchReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, p)
}

func (r *reports) snapshot() []rendezvous.PunchReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rendezvous.PunchReport(nil), r.got...)
}

// Listen and Dial each report a direct punch, with its method and attempts;
// WithoutOutcomeReport reports nothing.
func TestListenDialReportOutcome(t *testing.T) {
	ctx := testCtx(t)
	rec := &reports{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rendezvous.NewServer(rendezvous.WithTracer(rec))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	punchOnce := func(name string, opts ...Option) {
		opts = append(opts, WithInsecure())
		l, err := Listen(ctx, addr, name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c, err := Dial(ctx, addr, name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		acceptConn(t, l).Close()
	}
	punchOnce("quiet", WithoutOutcomeReport())
	punchOnce("loud")

	var got []rendezvous.PunchReport
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		got = rec.snapshot()
	}
	time.Sleep(100 * time.Millisecond) // a stray report of the quiet pair would be in by now
	got = rec.snapshot()
	if len(got) != 2 {
		t.Fatalf("reports = %+v, want two (the loud pair's listener and dialer)", got)
	}
	total := 0
	for _, r := range got {
		if r.Path != rendezvous.PathDirect || r.TimeToConnect <= 0 || r.TimeToConnect > time.Minute {
			t.Errorf("report %+v: want a direct punch with a time", r)
		}
		switch r.Method {
		case rendezvous.PunchSimultaneousOpen, rendezvous.PunchConnect:
			// This side dialed the connection: at least one SYN.
			if r.Attempts < 1 {
				t.Errorf("report %+v: a side that dialed reports no attempt", r)
			}
		case rendezvous.PunchAccept:
			// The peer's SYN may have come before this side's first dial.
		default:
			t.Errorf("report %+v: method %q", r, r.Method)
		}
		total += r.Attempts
	}
	if total < 1 {
		t.Errorf("reports %+v: neither side sent a SYN", got)
	}
}
