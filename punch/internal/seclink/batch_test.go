package seclink

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// countingConn counts the writes that reach the connection below TLS.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
	fail   error
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, len(p))
	return c.Conn.Write(p)
}

func (c *countingConn) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// TestWriteIsOneBatch: the records of one application Write leave in one
// write of the connection below (up to batchLimit), and arrive whole.
func TestWriteIsOneBatch(t *testing.T) {
	a, b := tcpPair(t)
	ca := &countingConn{Conn: a}
	secret := mustSecret(t)
	ra, rb := handshakePair(t, ca, b, newTag(t), SecretAuth(secret, "batch"), SecretAuth(secret, "batch"))
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: %v, %v", ra.err, rb.err)
	}
	ca.take()

	for _, size := range []int{1, 16 << 10, 64 << 10, 200 << 10, 1 << 20} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, size)
			_, err := io.ReadFull(rb.conn, buf)
			if err != nil {
				buf = nil
			}
			got <- buf
		}()
		if n, err := ra.conn.Write(msg); n != size || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", size, n, err)
		}
		if r := <-got; !bytes.Equal(r, msg) {
			t.Fatalf("%d bytes: the peer read something else", size)
		}
		writes := ca.take()
		total := 0
		for _, w := range writes {
			total += w
			if w > batchLimit {
				t.Errorf("%d bytes: a write of %d bytes below TLS, over the %d-byte batch limit", size, w, batchLimit)
			}
		}
		// Records carry at most 16 KiB of plaintext and 22 bytes of overhead.
		records := (size + 16<<10 - 1) / (16 << 10)
		want := (total + batchLimit - 1) / batchLimit
		if len(writes) != want || total < size || total > size+records*22 {
			t.Errorf("Write(%d bytes): %d writes below TLS (%v, %d bytes), want %d", size, len(writes), writes, total, want)
		}
	}
}

// TestBatchWriteErrorSticks: a batch that fails below TLS fails the Write
// that made it, and every Write after it.
func TestBatchWriteErrorSticks(t *testing.T) {
	a, b := tcpPair(t)
	ca := &countingConn{Conn: a}
	secret := mustSecret(t)
	ra, rb := handshakePair(t, ca, b, newTag(t), SecretAuth(secret, "batch"), SecretAuth(secret, "batch"))
	if ra.err != nil || rb.err != nil {
		t.Fatalf("handshake: %v, %v", ra.err, rb.err)
	}
	boom := errors.New("boom")
	ca.mu.Lock()
	ca.fail = boom
	ca.mu.Unlock()
	if n, err := ra.conn.Write(make([]byte, 40<<10)); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("Write over a failing conn = %d, %v; want 0, boom", n, err)
	}
	ca.mu.Lock()
	ca.fail = nil
	ca.mu.Unlock()
	if _, err := ra.conn.Write([]byte("after")); !errors.Is(err, boom) {
		t.Fatalf("Write after a failed batch = %v; want the batch's error", err)
	}
}
