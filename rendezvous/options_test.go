package rendezvous

import (
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Options given values that mean nothing make the server refuse to serve,
// with an error that names the option, instead of being clamped or ignored.
func TestInvalidServerOptions(t *testing.T) {
	cases := map[string]ServerOption{
		"WithMaxMessageSize(19)":       WithMaxMessageSize(19),
		"WithMaxMessageSize(65556)":    WithMaxMessageSize(maxWireMessageSize + 1),
		"WithKeepAlive(0s)":            WithKeepAlive(0),
		"WithMaxNameLength(0)":         WithMaxNameLength(0),
		"WithMaxNameLength(256)":       WithMaxNameLength(256),
		"WithMaxCandidates(-1)":        WithMaxCandidates(-1),
		"WithMaxConnsPerIP(-1)":        WithMaxConnsPerIP(-1),
		"WithMaxConns(-1)":             WithMaxConns(-1),
		"WithReadTimeout(-1s)":         WithReadTimeout(-time.Second),
		"WithIdleTimeout(0s)":          WithIdleTimeout(0),
		"WithWriteTimeout(0s)":         WithWriteTimeout(0),
		"WithPingTimeout(-1ms)":        WithPingTimeout(-time.Millisecond),
		"WithRegisterRate(-1, 10)":     WithRegisterRate(-1, 10),
		"WithConnectRate(10, 0)":       WithConnectRate(10, 0),
		"WithUnknownNameRate(NaN, 10)": WithUnknownNameRate(math.NaN(), 10),
		"WithNameConnectRate(+Inf, 1)": WithNameConnectRate(math.Inf(1), 1),
		"WithSourcePrefix(33, 64)":     WithSourcePrefix(33, 64),
		"WithSourcePrefix(32, 129)":    WithSourcePrefix(32, 129),
		"WithMaxRateEntries(0)":        WithMaxRateEntries(0),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			err = NewServer(opt).Serve(ln)
			if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), name) {
				t.Errorf("Serve: %v, want ErrInvalidOption naming %s", err, name)
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("Serve refused to serve but left %s listening", addr)
			}
			err = NewServer(opt).ListenAndServe(context.Background(), "127.0.0.1:0")
			if !errors.Is(err, ErrInvalidOption) {
				t.Errorf("ListenAndServe: %v, want ErrInvalidOption", err)
			}
		})
	}
}

// A client given a meaningless option fails before it connects.
func TestInvalidClientOptions(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	serveOn(t, ln)
	addr := ln.Addr().String()
	ctx := testCtx(t)
	cases := map[string]ClientOption{
		"WithBackoff(0s, 1s)":     WithBackoff(0, time.Second),
		"WithBackoff(1s, 500ms)":  WithBackoff(time.Second, 500*time.Millisecond),
		"WithRequestTimeout(0s)":  WithRequestTimeout(0),
		"WithKeepAlive(-1s)":      WithKeepAlive(-time.Second),
		"WithMaxMessageSize(0)":   WithMaxMessageSize(0),
		"WithRequestTimeout(-1s)": WithRequestTimeout(-time.Second),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			check := func(call string, err error) {
				t.Helper()
				if !errors.Is(err, ErrInvalidOption) || !strings.Contains(err.Error(), name) {
					t.Errorf("%s: %v, want ErrInvalidOption naming %s", call, err, name)
				}
			}
			_, err := Register(ctx, addr, anyLocal, "opt", nil, opt)
			check("Register", err)
			_, _, err = Connect(ctx, addr, anyLocal, "opt", nil, opt)
			check("Connect", err)
			_, err = MappedAddress(ctx, addr, anyLocal, opt)
			check("MappedAddress", err)
		})
	}
	if n := ln.n.Load(); n != 0 {
		t.Errorf("clients with invalid options made %d connections, want 0", n)
	}
}

// Zero is a meaning, not a mistake, where the table says so: no cap, no
// host candidates. Such a server serves a pairing.
func TestZeroOptionValuesThatMeanSomething(t *testing.T) {
	ctx := testCtx(t)
	_, addr := startServer(t, WithMaxConns(0), WithMaxConnsPerIP(0), WithMaxCandidates(0), WithNameValidator(nil), WithLogger(nil))
	reg, err := Register(ctx, addr, reusedPort(t), "zero", nil, WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pi, c, err := Connect(ctx, addr, anyLocal, "zero", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(pi.Candidates) != 1 || pi.Candidates[0] != reg.Observed() {
		t.Errorf("dialer got candidates %v, want only the listener's observed %v", pi.Candidates, reg.Observed())
	}
	_, _, err = Connect(ctx, addr, anyLocal, "zero", []netip.AddrPort{ap("192.0.2.1:1")})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeBadRequest {
		t.Errorf("Connect with a host candidate to a server admitting none: %v, want 400", err)
	}
}
