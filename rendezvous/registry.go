package rendezvous

import "sync"

// registry maps names to the listener connection holding each. A name is
// held by one connection at a time and freed when that connection closes,
// or handed to a newer connection presenting the holder's resume token
// (claimResumable, ownerproof.go). Who may claim a protected name at all
// is decided before, by the owner proof (peerConn.checkOwner).
type registry struct {
	mu    sync.Mutex
	names map[string]*peerConn
	// changed is told the number of names each time it changes, under mu
	// so that the numbers arrive in order (the Tracer's Listeners).
	changed func(n int)
}

func newRegistry(changed func(n int)) *registry {
	return &registry{names: make(map[string]*peerConn), changed: changed}
}

// claim gives name to c unless another connection holds it.
func (r *registry) claim(name string, c *peerConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.names[name]
	if ok && cur != c {
		return false
	}
	r.names[name] = c
	if !ok {
		r.changed(len(r.names))
	}
	return true
}

// release frees name if c still holds it.
func (r *registry) release(name string, c *peerConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name] == c {
		delete(r.names, name)
		r.changed(len(r.names))
	}
}

func (r *registry) lookup(name string) *peerConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[name]
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.names)
}
