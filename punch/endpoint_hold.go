package punch

// A relayed Conn keeps punching for a direct path in the background
// (upgrade.go), on the Endpoint its punch ran on: the one Dial made for
// it, or the Listener's. Both of those close their Endpoint with
// closeWhenFree, which waits for the relayed Conns holding it, so that
// closing a Listener after Accept (one connection, as `tcpunch listen`
// does) does not end the upgrade of the connection it accepted.

// hold takes a reference on e for a relayed Conn; false when e is closed.
func (e *Endpoint) hold() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.closeLater {
		return false
	}
	e.holds++
	return true
}

// release drops a reference taken by hold, and closes e if it was to
// close when free.
func (e *Endpoint) release() {
	e.mu.Lock()
	e.holds--
	closeNow := e.holds == 0 && e.closeLater
	e.mu.Unlock()
	if closeNow {
		e.Close()
	}
}

// closeWhenFree closes e now, or, while relayed Conns hold it, when the
// last of them closes.
func (e *Endpoint) closeWhenFree() {
	e.mu.Lock()
	held := e.holds > 0
	if held {
		e.closeLater = true
	}
	e.mu.Unlock()
	if !held {
		e.Close()
	}
}
