package punch

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestHelloRoundTrip(t *testing.T) {
	h := hello{flags: flagDialed | flagNominated, role: RoleControlling, instance: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	copy(h.tag[:], "0123456789abcdef")
	b := h.marshal()
	if len(b) != helloLen {
		t.Fatalf("hello is %d bytes, want %d", len(b), helloLen)
	}
	want := []byte("TPNH\x01\x01\x03\x01\x01\x02\x03\x04\x05\x06\x07\x080123456789abcdef")
	if !bytes.Equal(b, want) {
		t.Errorf("hello bytes\n%q, want\n%q", b, want)
	}
	// Bytes after the frame (the application's) are not consumed.
	r := bytes.NewReader(append(b, "app data"...))
	got, err := readFrame(r)
	if err != nil || got != h {
		t.Fatalf("readFrame = %+v, %v; want %+v", got, err, h)
	}
	if r.Len() != len("app data") {
		t.Errorf("readFrame consumed %d bytes of the application's", len("app data")-r.Len())
	}
}

func TestReadFrameRefusals(t *testing.T) {
	good := hello{role: RoleControlled}.marshal()
	for _, tc := range []struct {
		name   string
		in     []byte
		reason rejectReason
		reply  bool
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n\r\n0123456789abcdef"), reasonMalformed, false},
		{"version", append([]byte("TPNH\x02"), good[5:]...), reasonVersion, true},
		{"type", append([]byte("TPNH\x01\x07"), good[6:]...), reasonMalformed, true},
		{"role", append(append([]byte{}, good[:7]...), append([]byte{9}, good[8:]...)...), reasonMalformed, true},
	} {
		_, err := readFrame(bytes.NewReader(tc.in))
		var ve *verifyError
		if !errors.As(err, &ve) || ve.reason != tc.reason || ve.reply != tc.reply {
			t.Errorf("%s: err = %v, want reason %v reply %v", tc.name, err, tc.reason, tc.reply)
		}
	}
	_, err := readFrame(bytes.NewReader(marshalReject(reasonRole)))
	var re *rejectedError
	if !errors.As(err, &re) || re.reason != reasonRole || !errors.Is(err, ErrPeerRejected) {
		t.Errorf("reject frame: err = %v", err)
	}
	if b := marshalReject(reasonSession); !bytes.Equal(b, []byte("TPNH\x01\x02\x03")) || len(b) != rejectLen {
		t.Errorf("reject bytes %q", b)
	}
	if _, err := readFrame(bytes.NewReader(good[:10])); err == nil {
		t.Error("a truncated hello was accepted")
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(hello{role: RoleControlling, flags: flagDialed}.marshal())
	f.Add(marshalReject(reasonSelf))
	f.Add([]byte("TPNH\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, err := readFrame(r)
		consumed := len(b) - r.Len()
		if consumed > helloLen {
			t.Fatalf("read %d bytes, more than one frame", consumed)
		}
		if err == nil {
			if consumed != helloLen || !bytes.Equal(h.marshal()[:6], b[:6]) || !h.role.valid() {
				t.Fatalf("accepted %q as %+v", b, h)
			}
		}
	})
}

// fakeConn has no addresses, as a connection reset before it was inspected
// may report.
type fakeConn struct {
	net.Conn
	local, remote net.Addr
}

func (c fakeConn) LocalAddr() net.Addr  { return c.local }
func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

func TestEndpointsWithoutAddress(t *testing.T) {
	la := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	var nilTCP *net.TCPAddr
	for _, c := range []fakeConn{{local: la}, {local: la, remote: nilTCP}, {remote: la}, {local: la, remote: &net.UDPAddr{}}} {
		if _, _, err := endpoints(c); err == nil {
			t.Errorf("endpoints(%v→%v) succeeded", c.local, c.remote)
		}
	}
	if _, _, err := endpoints(fakeConn{local: la}); !errors.Is(err, errNoRemoteAddr) {
		t.Errorf("no remote address: %v", err)
	}
	l, r, err := endpoints(fakeConn{local: la, remote: &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 1}})
	if err != nil || l != r {
		t.Errorf("mapped and plain IPv4 differ: %v %v %v", l, r, err)
	}
}
