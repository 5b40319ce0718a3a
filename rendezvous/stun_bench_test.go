package rendezvous

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/pion/stun/v3"
)

// BenchmarkBindingRoundTrip measures one STUN Binding request answered by
// the server over a loopback TCP connection: the per-request cost the
// `tcpunch bench` STUN rate is made of (read, decode, encode, write).
func BenchmarkBindingRoundTrip(b *testing.B) {
	_, addr := startServer(b)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(c)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req.Raw); err != nil {
			b.Fatal(err)
		}
		if buf, err = readFrame(r, buf, DefaultMaxMessageSize, nil); err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
	}
}

// BenchmarkReadFrame measures framing one Binding request from a stream
// the way the server does, with the server's first-byte callback.
func BenchmarkReadFrame(b *testing.B) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		b.Fatal(err)
	}
	stream := bytes.Repeat(req.Raw, 1024)
	rd := bytes.NewReader(stream)
	buf := make([]byte, 0, 256)
	started := func() {}
	b.ReportAllocs()
	for b.Loop() {
		if rd.Len() == 0 {
			rd.Reset(stream)
		}
		raw, err := readFrame(rd, buf, DefaultMaxMessageSize, started)
		if err != nil {
			b.Fatal(err)
		}
		buf = raw[:0]
	}
}

// BenchmarkDecodeBinding measures decoding a Binding request as the
// server does for every STUN client.
func BenchmarkDecodeBinding(b *testing.B) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeMessage(req.Raw); err != nil {
			b.Fatal(err)
		}
	}
}
