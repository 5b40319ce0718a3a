package natlab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Capture is a packet capture of one link of a lab node, what
// `tcpdump -i LINK -w FILE` would record, taken without tcpdump: a raw
// AF_PACKET socket opened inside the node's namespace. Start one with
// [Host.Capture] or [Router.Capture], stop it with [Capture.Stop], then
// read it as a pcap file ([Capture.Pcap], [Capture.WriteFile]) or ask
// whether some bytes went over the link ([Capture.Contains]).
//
// A capture is bounded: it stops by itself when its context is done,
// after its duration ([WithCaptureDuration]), when it holds its size
// limit ([WithCaptureLimit]), and when the lab is closed. Its methods are
// safe for concurrent use.
type Capture struct {
	iface   string
	snaplen int
	limit   int

	mu        sync.Mutex
	frames    []frame
	size      int // pcap bytes of frames, with the file header
	truncated bool
	stopped   bool
	err       error

	done chan struct{} // closed when the reader has stopped
	stop func()        // ends the reader; idempotent
}

type frame struct {
	at      time.Time
	origLen int
	data    []byte
}

// CaptureOption configures a [Capture].
type CaptureOption func(*captureConfig)

type captureConfig struct {
	iface    string
	snaplen  int
	limit    int
	duration time.Duration
}

const (
	defaultSnaplen  = 262144 // tcpdump's: whole frames, offloaded ones too
	defaultLimit    = 32 << 20
	defaultDuration = 2 * time.Minute
	pcapHeaderLen   = 24
	pcapRecordLen   = 16
)

// WithCaptureInterface captures the interface name inside the node's
// namespace ("lan", "lo" ...) instead of its access link ([Host.Link]).
func WithCaptureInterface(name string) CaptureOption {
	return func(c *captureConfig) { c.iface = name }
}

// WithSnaplen keeps at most n bytes of each frame (default 262144, whole
// frames). Bytes beyond it are neither in the pcap nor seen by Contains.
func WithSnaplen(n int) CaptureOption {
	return func(c *captureConfig) { c.snaplen = n }
}

// WithCaptureLimit stops the capture once its pcap would grow beyond n
// bytes (default 32 MiB); [Capture.Truncated] then says so.
func WithCaptureLimit(n int) CaptureOption {
	return func(c *captureConfig) { c.limit = n }
}

// WithCaptureDuration stops the capture after d (default 2 minutes) even
// if the caller forgets to.
func WithCaptureDuration(d time.Duration) CaptureOption {
	return func(c *captureConfig) { c.duration = d }
}

func newCaptureConfig(link string, opts []CaptureOption) (captureConfig, error) {
	c := captureConfig{iface: link, snaplen: defaultSnaplen, limit: defaultLimit, duration: defaultDuration}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.iface == "":
		return c, fmt.Errorf("natlab: capture: no interface")
	case c.snaplen < 64 || c.snaplen > defaultSnaplen:
		return c, fmt.Errorf("natlab: capture: snaplen %d out of range [64, %d]", c.snaplen, defaultSnaplen)
	case c.limit < pcapHeaderLen:
		return c, fmt.Errorf("natlab: capture: limit %d below the pcap header's %d bytes", c.limit, pcapHeaderLen)
	case c.duration <= 0:
		return c, fmt.Errorf("natlab: capture: duration %v must be positive", c.duration)
	}
	return c, nil
}

// add records one frame; false means the size limit is reached and the
// capture must stop.
func (c *Capture) add(at time.Time, data []byte, origLen int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	if c.size+pcapRecordLen+len(data) > c.limit {
		c.truncated = true
		return false
	}
	c.frames = append(c.frames, frame{at: at, origLen: origLen, data: bytes.Clone(data)})
	c.size += pcapRecordLen + len(data)
	return true
}

// finish marks the capture stopped with the reader's error, if any.
func (c *Capture) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.err == nil {
		c.err = err
	}
}

// Stop ends the capture, after taking in the frames already queued on its
// socket, and returns the error that ended it early, if any (a size limit
// is not an error: see [Capture.Truncated]). It is idempotent.
func (c *Capture) Stop() error {
	c.stop()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the capture has stopped, for whatever reason.
func (c *Capture) Done() <-chan struct{} { return c.done }

// Interface is the captured interface.
func (c *Capture) Interface() string { return c.iface }

// Packets is the number of frames captured so far.
func (c *Capture) Packets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

// Truncated reports whether the size limit ended the capture: frames
// after that point are missing, so an absent marker proves nothing.
func (c *Capture) Truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truncated
}

// Pcap is the capture so far as a classic pcap file (microsecond
// timestamps, LINKTYPE_ETHERNET), as tcpdump -w writes it and every
// packet tool reads it.
func (c *Capture) Pcap() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	b.Grow(c.size + pcapHeaderLen)
	writePcap(&b, c.snaplen, c.frames)
	return b.Bytes()
}

// WriteFile writes [Capture.Pcap] to name.
func (c *Capture) WriteFile(name string) error {
	if err := os.WriteFile(name, c.Pcap(), 0o644); err != nil {
		return fmt.Errorf("natlab: writing the capture of %s: %w", c.iface, err)
	}
	return nil
}

// linktypeEthernet is LINKTYPE_ETHERNET of the pcap link-layer registry.
const linktypeEthernet = 1

func writePcap(w io.Writer, snaplen int, frames []frame) {
	le := binary.LittleEndian
	h := make([]byte, 0, pcapHeaderLen)
	h = le.AppendUint32(h, 0xa1b2c3d4) // magic: microsecond timestamps
	h = le.AppendUint16(h, 2)          // version 2.4
	h = le.AppendUint16(h, 4)
	h = le.AppendUint32(h, 0) // thiszone
	h = le.AppendUint32(h, 0) // sigfigs
	h = le.AppendUint32(h, uint32(snaplen))
	h = le.AppendUint32(h, linktypeEthernet)
	w.Write(h)
	for _, f := range frames {
		r := make([]byte, 0, pcapRecordLen)
		r = le.AppendUint32(r, uint32(f.at.Unix()))
		r = le.AppendUint32(r, uint32(f.at.Nanosecond()/1000))
		r = le.AppendUint32(r, uint32(len(f.data)))
		r = le.AppendUint32(r, uint32(f.origLen))
		w.Write(r)
		w.Write(f.data)
	}
}

// Contains reports whether marker went over the link in the captured
// frames: inside any one frame (any protocol, headers included), or in the
// payload of a TCP connection in either direction with the segments put
// back in sequence order, so a marker split across segments is found too.
// An empty marker is never contained.
//
// It only sees what was captured: a frame cut by the snaplen, or missing
// after the size limit ([Capture.Truncated]), hides what it held.
func (c *Capture) Contains(marker []byte) bool {
	if len(marker) == 0 {
		return false
	}
	c.mu.Lock()
	frames := slices.Clone(c.frames)
	c.mu.Unlock()
	for _, f := range frames {
		if bytes.Contains(f.data, marker) {
			return true
		}
	}
	for _, stream := range tcpStreams(frames) {
		if bytes.Contains(stream, marker) {
			return true
		}
	}
	return false
}
