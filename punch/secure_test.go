package punch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

func TestNoAuthIsAnError(t *testing.T) {
	ctx := testCtx(t)
	if _, err := Listen(ctx, "127.0.0.1:1", "x"); !errors.Is(err, ErrNoAuth) {
		t.Errorf("Listen without trust: %v, want ErrNoAuth", err)
	}
	if _, err := Dial(ctx, "127.0.0.1:1", "x"); !errors.Is(err, ErrNoAuth) || !strings.Contains(err.Error(), "WithInsecure") {
		t.Errorf("Dial without trust: %v, want ErrNoAuth naming the options", err)
	}
	s, _ := GenerateSecret()
	if _, err := Dial(ctx, "127.0.0.1:1", "x", WithSecret(s), WithInsecure()); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("WithSecret and WithInsecure: %v", err)
	}
	code, _ := GenerateCode()
	if _, err := Dial(ctx, "127.0.0.1:1", "other", WithCode(code)); err == nil || !strings.Contains(err.Error(), code.Name()) {
		t.Errorf("WithCode with a foreign name: %v", err)
	}
}

// TestSecretLink: the server sees the protected name, never the label; the
// link moves data both ways and Finish reports a complete delivery.
func TestSecretLink(t *testing.T) {
	ctx := testCtx(t)
	rv, _ := rendezvousAt(t, "127.0.0.1:0")
	s, _ := GenerateSecret()
	var regName string
	ln, err := Listen(ctx, rv, "label", WithSecret(s), WithEvents(func(ev Event) {
		if ev.Kind == EventPeerInfo {
			regName = ev.Detail
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write(bytes.ToUpper(b))
		c.(*Conn).Finish(ctx)
		c.Close()
	}()
	c, err := Dial(ctx, rv, "label", WithSecret(s))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Info().Auth != AuthSecret || c.Info().Handshake <= 0 {
		t.Errorf("Info: auth %q, handshake %v", c.Info().Auth, c.Info().Handshake)
	}
	c.Write([]byte("hello"))
	c.CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "HELLO" {
		t.Fatalf("got %q, %v", got, err)
	}
	d, err := c.Finish(ctx)
	if err != nil || !d.Complete() || d.Sent != 5 || d.Received != 5 {
		t.Fatalf("Finish: %v, %+v", err, d)
	}
	if strings.Contains(regName, "label") || !strings.Contains(regName, "pk-") {
		t.Errorf("the server saw %q", regName)
	}
	// Another secret: the derived name differs, so the server knows none.
	other, _ := GenerateSecret()
	if _, err := Dial(ctx, rv, "label", WithSecret(other)); !errors.Is(err, rendezvous.ErrUnknownName) {
		t.Errorf("Dial with another secret: %v, want ErrUnknownName", err)
	}
}

// TestCodeRetires: three wrong codes retire a code listener (Accept says
// so); a right one is served once, and the code is retired afterwards.
func TestCodeRetires(t *testing.T) {
	ctx := testCtx(t)
	rv, _ := rendezvousAt(t, "127.0.0.1:0")
	code, _ := GenerateCode()
	ln, err := Listen(ctx, rv, "", WithCode(code))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrong, err := ParseCode(strings.SplitN(code.String(), "-", 2)[0] + "-apple-apple-apple")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := Dial(dctx, rv, "", WithCode(wrong))
		cancel()
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("wrong code %d: %v, want ErrAuthFailed", i+1, err)
		}
	}
	if _, err := ln.Accept(); !errors.Is(err, ErrCodeRetired) {
		t.Fatalf("Accept after 3 wrong codes: %v, want ErrCodeRetired", err)
	}

	code2, _ := GenerateCode()
	ln2, err := Listen(ctx, rv, code2.Name(), WithCode(code2))
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	c, err := Dial(ctx, rv, "", WithCode(code2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lc := acceptConn(t, ln2)
	defer lc.Close()
	if lc.Info().Auth != AuthCode {
		t.Errorf("listener's Info().Auth = %q", lc.Info().Auth)
	}
	if _, err := ln2.Accept(); !errors.Is(err, ErrCodeRetired) {
		t.Errorf("Accept after the code's connection: %v, want ErrCodeRetired", err)
	}
}
