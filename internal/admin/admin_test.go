package admin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tcpunch/tcpunch/internal/admin"
	"github.com/tcpunch/tcpunch/internal/metrics"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadinessFollowsTheServer(t *testing.T) {
	m := metrics.New()
	s := admin.New(m.Registry(), slog.New(slog.DiscardHandler))
	if err := s.Listen(context.Background(), "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()

	steps := []struct {
		do   func()
		want int
		body string
	}{
		{func() {}, 503, "not ready\n"},
		{func() { s.SetReady(true) }, 200, "ok\n"},
		{s.Drain, 503, "draining\n"},
		{func() { s.SetReady(true) }, 503, "draining\n"}, // a drain is for good
	}
	for i, st := range steps {
		st.do()
		if code, body := get(t, base+"/readyz"); code != st.want || body != st.body {
			t.Errorf("step %d: /readyz = %d %q, want %d %q", i, code, body, st.want, st.body)
		}
	}
	if code, _ := get(t, base+"/livez"); code != 200 {
		t.Errorf("/livez = %d while draining, want 200 (the process lives)", code)
	}

	m.Listeners(3)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	if got := fams["tcpunch_listeners_registered"].GetMetric()[0].GetGauge().GetValue(); got != 3 {
		t.Errorf("tcpunch_listeners_registered = %v, want 3", got)
	}
	if code, _ := get(t, base+"/nothing"); code != 404 {
		t.Errorf("/nothing = %d, want 404", code)
	}
}
