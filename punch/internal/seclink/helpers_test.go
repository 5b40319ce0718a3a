package seclink

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a real TCP connection over loopback.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newTag(t *testing.T) SessionTag {
	var tag SessionTag
	if _, err := rand.Read(tag[:]); err != nil {
		t.Fatal(err)
	}
	return tag
}

type result struct {
	conn *Conn
	err  error
}

// handshakePair runs the controlling side on a and the controlled side on b
// concurrently.
func handshakePair(t *testing.T, a, b net.Conn, tag SessionTag, authA, authB Auth) (ra, rb result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		c, err := Handshake(ctx, b, RoleControlled, tag, authB)
		if err != nil {
			b.Close() // as a caller would: unblocks the peer
		}
		done <- result{c, err}
	}()
	c, err := Handshake(ctx, a, RoleControlling, tag, authA)
	if err != nil {
		a.Close()
	}
	ra = result{c, err}
	rb = <-done
	return ra, rb
}

func mustSecret(t *testing.T) Secret {
	t.Helper()
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCode(t *testing.T, s string) Code {
	t.Helper()
	c, err := ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
