//go:build linux

package natlab_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// A plaintext marker sent over a plain TCP connection out through a NAT is
// in the capture of the router's WAN link, also when it is split across
// two segments; bytes never sent are not. The capture is a pcap file of
// the WAN side: the router's public address, never the LAN one.
func TestCaptureSeesPlaintext(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	r := must[*natlab.Router](t)(l.AddRouter(ctx, "r", natlab.NATDrop))
	p := must[*natlab.Host](t)(l.AddPeer(ctx, "p", r))
	rdv := l.Rendezvous()
	serveAddrEcho(t, rdv, "tcp4", ":7000")

	capt, err := r.Capture(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, c, err := observe(ctx, p, netip.AddrPort{}, hostPort(rdv.Addr(), 7000))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	marker := []byte("tcpunch-marker-7f3a9c")
	// Two writes with a pause: two segments (Go sets TCP_NODELAY), so the
	// marker is in no single frame and only the reassembled stream has it.
	c.Write(marker[:9])
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.Discard(9); err != nil { // the echo of the first half
		t.Fatal(err)
	}
	fmt.Fprintf(c, "%s\n", marker[9:])
	if line, err := br.ReadString('\n'); err != nil || line != string(marker[9:])+"\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	if !capt.Contains(marker) {
		t.Errorf("the capture of %d frames on %s lacks the plaintext marker %q", capt.Packets(), capt.Interface(), marker)
	}
	if capt.Contains([]byte("tcpunch-never-sent-5be1")) {
		t.Error("the capture contains bytes that were never sent")
	}
	if capt.Contains(nil) {
		t.Error("an empty marker is contained")
	}
	if capt.Truncated() {
		t.Error("a small capture was truncated")
	}

	pcap := capt.Pcap()
	srcs := pcapIPv4Sources(t, pcap)
	if n := len(srcs); n != capt.Packets() {
		t.Errorf("the pcap has %d records, the capture %d frames", n, capt.Packets())
	}
	seen := map[netip.Addr]bool{}
	for _, a := range srcs {
		seen[a] = true
	}
	if !seen[r.Addr()] || !seen[rdv.Addr()] || seen[p.Addr()] {
		t.Errorf("IPv4 sources on the WAN link %v: want %v (masqueraded) and %v, not the LAN address %v", seen, r.Addr(), rdv.Addr(), p.Addr())
	}
	file := filepath.Join(t.TempDir(), "wan.pcap")
	if err := capt.WriteFile(file); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(file); err != nil || len(b) != len(pcap) {
		t.Errorf("WriteFile wrote %d bytes (%v), want %d", len(b), err, len(pcap))
	}
}

// pcapIPv4Sources parses a classic pcap of Ethernet frames, checking its
// header, and returns each record's IPv4 source (the zero Addr for other
// frames).
func pcapIPv4Sources(t *testing.T, b []byte) []netip.Addr {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint32(b) != 0xa1b2c3d4 || le.Uint16(b[4:]) != 2 || le.Uint16(b[6:]) != 4 || le.Uint32(b[20:]) != 1 {
		t.Fatalf("not a classic little-endian pcap of Ethernet frames: % x", b[:min(len(b), 24)])
	}
	snap := le.Uint32(b[16:])
	var out []netip.Addr
	for p := b[24:]; len(p) > 0; {
		if len(p) < 16 {
			t.Fatalf("a record header cut short: %d bytes", len(p))
		}
		incl, orig := le.Uint32(p[8:]), le.Uint32(p[12:])
		if incl > snap || incl > orig || int(incl) > len(p)-16 {
			t.Fatalf("record of %d bytes (orig %d, snaplen %d, %d left)", incl, orig, snap, len(p)-16)
		}
		f := p[16 : 16+incl]
		var src netip.Addr
		if len(f) >= 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 {
			src = netip.AddrFrom4([4]byte(f[26:30]))
		}
		out = append(out, src)
		p = p[16+incl:]
	}
	return out
}

// A capture ends at its size limit (reporting it), at its context's end,
// and when the lab closes.
func TestCaptureBounds(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ctx := t.Context()
	rdv := l.Rendezvous()
	h := must[*natlab.Host](t)(l.AddPublicHost(ctx, "h"))
	serveAddrEcho(t, rdv, "tcp4", ":7000")
	talk := func() {
		t.Helper()
		_, c, err := observe(ctx, h, netip.AddrPort{}, hostPort(rdv.Addr(), 7000))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	waitDone := func(what string, c *natlab.Capture) {
		t.Helper()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the capture is still running", what)
		}
	}

	small := must[*natlab.Capture](t)(h.Capture(ctx, natlab.WithCaptureLimit(200)))
	talk()
	waitDone("size limit", small)
	if err := small.Stop(); err != nil {
		t.Error(err)
	}
	if !small.Truncated() || len(small.Pcap()) > 200 || small.Packets() == 0 {
		t.Errorf("limit 200: truncated %v, %d bytes, %d frames", small.Truncated(), len(small.Pcap()), small.Packets())
	}

	cctx, cancel := context.WithCancel(ctx)
	byCtx := must[*natlab.Capture](t)(rdv.Capture(cctx))
	cancel()
	waitDone("context", byCtx)

	short := must[*natlab.Capture](t)(rdv.Capture(ctx, natlab.WithCaptureDuration(50*time.Millisecond)))
	waitDone("duration", short)

	byClose := must[*natlab.Capture](t)(h.Capture(ctx))
	talk()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone("lab closed", byClose)
	if byClose.Packets() == 0 {
		t.Error("the frames captured before Close are gone")
	}
	for _, bad := range []natlab.CaptureOption{
		natlab.WithSnaplen(10), natlab.WithCaptureLimit(10), natlab.WithCaptureDuration(0), natlab.WithCaptureInterface(""),
	} {
		if _, err := rdv.Capture(ctx, bad); err == nil {
			t.Error("a nonsense capture option was accepted")
		}
	}
	if _, err := rdv.Capture(ctx); err == nil {
		t.Error("a capture in a closed lab started")
	}
}
