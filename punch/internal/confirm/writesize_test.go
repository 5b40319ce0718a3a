package confirm

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"sync"
	"testing"
	"testing/iotest"
)

// writeCounter records the sizes of the writes that reach the connection
// below.
type writeCounter struct {
	*net.TCPConn
	mu     sync.Mutex
	writes []int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, len(p))
	w.mu.Unlock()
	return w.TCPConn.Write(p)
}

// drain reads a confirmed stream to its end and returns its digest.
func drain(t *testing.T, c net.Conn) <-chan [32]byte {
	out := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		if _, err := io.Copy(h, New(c.(HalfCloser))); err != nil {
			t.Errorf("reading the stream: %v", err)
		}
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		out <- sum
	}()
	return out
}

// TestWriteSizes: a large Write leaves in writes of at most writeLimit
// bytes (frames and headers), as few as fit; ReadFrom makes one frame per
// read of the source, of at most readChunk bytes, and never more writes
// than reads. Both streams arrive whole.
func TestWriteSizes(t *testing.T) {
	t.Run("Write", func(t *testing.T) {
		a, b := tcpPair(t)
		wc := &writeCounter{TCPConn: a}
		c := New(wc)
		got := drain(t, b)
		data := randBytes(t, 1<<20+5)
		if n, err := c.Write(data); n != len(data) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if <-got != sha256.Sum256(data) {
			t.Fatal("the peer read other bytes")
		}
		writes := wc.writes[:len(wc.writes)-1] // the last is FIN
		total := 0
		for _, w := range writes {
			if w > writeLimit {
				t.Errorf("a write of %d bytes, over writeLimit %d", w, writeLimit)
			}
			total += w
		}
		frames := (len(data) + MaxPayload - 1) / MaxPayload
		if min := (total + writeLimit - 1) / writeLimit; len(writes) != min || total < len(data)+frames*headerSize {
			t.Errorf("%d bytes left in %d writes %v (%d bytes); want %d", len(data), len(writes), writes, total, min)
		}
	})
	t.Run("ReadFrom", func(t *testing.T) {
		a, b := tcpPair(t)
		wc := &writeCounter{TCPConn: a}
		c := New(wc)
		got := drain(t, b)
		data := randBytes(t, 1<<20+5)
		// A source whose reads return 100 KiB at most: each becomes a
		// frame of at most readChunk bytes, so four full TLS records.
		src := &chunkReader{r: bytes.NewReader(data), max: 100 << 10}
		if n, err := c.ReadFrom(src); n != int64(len(data)) || err != nil {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if <-got != sha256.Sum256(data) {
			t.Fatal("the peer read other bytes")
		}
		writes := wc.writes[:len(wc.writes)-1]
		for _, w := range writes {
			if w > headerSize+readChunk {
				t.Errorf("a frame of %d bytes, over %d", w, headerSize+readChunk)
			}
		}
		if len(writes) > src.reads || len(writes) != (len(data)+readChunk-1)/readChunk {
			t.Errorf("%d writes for %d reads of the source: %v", len(writes), src.reads, writes)
		}
	})
	t.Run("ReadFrom slow source", func(t *testing.T) {
		a, b := tcpPair(t)
		c := New(a)
		got := drain(t, b)
		data := randBytes(t, 300<<10)
		if _, err := c.ReadFrom(iotest.OneByteReader(bytes.NewReader(data[:100]))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadFrom(iotest.HalfReader(bytes.NewReader(data[100:]))); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if <-got != sha256.Sum256(data) {
			t.Fatal("the peer read other bytes")
		}
	})
}

type chunkReader struct {
	r     io.Reader
	max   int
	reads int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p[:min(len(p), c.max)])
}

// TestReadFromDoesNotBlockAck: the --exec pattern. Side A copies a child's
// output into the stream with ReadFrom while the child (a pipe here) waits
// for its input, the peer's stream, to end before it writes. A's reader
// must acknowledge the peer's FIN meanwhile; a ReadFrom that held the
// write lock while the source blocked would deadlock the two.
func TestReadFromDoesNotBlockAck(t *testing.T) {
	a, b := tcpPair(t)
	ctx := testCtx(t)
	ca, cb := New(a), New(b)
	childOut, childW := io.Pipe()
	upDone := make(chan error, 1)
	go func() {
		_, err := ca.ReadFrom(childOut)
		if err == nil {
			err = ca.CloseWrite()
		}
		upDone <- err
	}()
	go func() {
		// The child: reads all of its input, then answers.
		in, err := io.ReadAll(ca)
		if err == nil {
			_, err = childW.Write(append([]byte("got "), in...))
		}
		childW.CloseWithError(err)
	}()
	if _, err := cb.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cb.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(cb)
	if err != nil || string(reply) != "got request" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if d, err := cb.Finish(ctx); err != nil || !d.Complete() {
		t.Fatalf("B's Finish: %+v, %v", d, err)
	}
	if err := <-upDone; err != nil {
		t.Fatalf("A's ReadFrom: %v", err)
	}
	if d, err := ca.Finish(ctx); err != nil || !d.Complete() {
		t.Fatalf("A's Finish: %+v, %v", d, err)
	}
}
