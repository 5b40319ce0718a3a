package seclink

import (
	"net"
	"sync"
)

// batchLimit bounds what batchConn gathers before it writes: at most one
// relay frame (256 KiB), so a relayed batch crosses the server as one
// header and one splice.
const batchLimit = 256 << 10

// batchConn sits between crypto/tls and the path. crypto/tls hands the
// connection below one Write per record (at most 16 KiB of plaintext), so
// a 64 KiB application write costs four writes, and on the relay four
// frames, each a header read, a header write and a splice on the server.
// While a Conn.Write runs, batchConn gathers the records and writes them
// as one when the Write is done (or when batchLimit is reached). Every
// other write (the handshake, alerts, a close_notify, the KeyUpdate a Read
// answers) goes straight through, unless a batch is open, in which case
// it joins the batch in order and leaves with it: nothing waits for a
// later application write.
type batchConn struct {
	net.Conn

	mu   sync.Mutex
	open bool
	buf  []byte
	err  error // sticky: a batched write failed after tls counted it sent
}

// Write is crypto/tls's record write.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if !b.open {
		return b.Conn.Write(p)
	}
	if len(b.buf) > 0 && len(b.buf)+len(p) > batchLimit {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// begin opens a batch.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// end writes what the batch gathered and closes it.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = false
	if b.err != nil {
		return b.err
	}
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	if err != nil {
		// crypto/tls believes these records sent: the stream is broken
		// from here on, as its own write error would have made it.
		b.err = err
	}
	return err
}
