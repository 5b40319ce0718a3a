package netcheck

import (
	"net"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// nonces accepts on the reused port's listener and signals the nonce each
// connection brings (a dial-back, the hairpin), until the listener closes.
type nonces struct {
	mu   sync.Mutex
	want map[[rendezvous.DialBackNonceSize]byte]chan struct{}
}

func acceptNonces(ln net.Listener) *nonces {
	n := &nonces{want: map[[rendezvous.DialBackNonceSize]byte]chan struct{}{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				nonce, err := rendezvous.ReadDialBack(c, 5*time.Second)
				if err != nil {
					return
				}
				n.mu.Lock()
				ch := n.want[nonce]
				delete(n.want, nonce)
				n.mu.Unlock()
				if ch != nil {
					close(ch)
				}
			}()
		}
	}()
	return n
}

// expect returns a channel closed when a connection brings nonce.
func (n *nonces) expect(nonce [rendezvous.DialBackNonceSize]byte) <-chan struct{} {
	ch := make(chan struct{})
	n.mu.Lock()
	n.want[nonce] = ch
	n.mu.Unlock()
	return ch
}
