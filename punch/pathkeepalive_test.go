package punch

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// TestRelayKeepaliveOutlivesIdleTimeout: a relayed pair that says nothing
// for several of the server's idle timeouts is still relayed afterwards
// when its path layers send KEEPALIVE frames, and is ended as idle (END
// 408 on both sides) when they do not.
func TestRelayKeepaliveOutlivesIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{{"keepalive", idle / 4}, {"none", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := rendezvous.NewServer(rendezvous.WithRelayIdleTimeout(idle))
			done := make(chan struct{})
			go func() { srv.Serve(ln); close(done) }()
			t.Cleanup(func() { srv.Close(); <-done })
			la, lb := relayLegs(t, ln.Addr().String())
			pa := newPathConnKeepalive(la, RoleControlling, tc.every)
			pb := newPathConnKeepalive(lb, RoleControlled, tc.every)
			t.Cleanup(func() { pa.Close(); pb.Close() })

			// Both sides read all along, as an application waiting for input
			// does; nothing is written for five idle timeouts.
			type got struct {
				b   []byte
				err error
			}
			read := func(c *pathConn) <-chan got {
				ch := make(chan got, 1)
				go func() {
					buf := make([]byte, 16)
					n, err := c.Read(buf)
					ch <- got{buf[:n], err}
				}()
				return ch
			}
			ra, rb := read(pa), read(pb)
			time.Sleep(5 * idle)

			if tc.every == 0 {
				for who, ch := range map[string]<-chan got{"controlling": ra, "controlled": rb} {
					select {
					case g := <-ch:
						var re *rendezvous.RelayEndedError
						if !errors.As(g.err, &re) || re.Code != rendezvous.RelayCodeIdle {
							t.Errorf("%s read %q, %v; want the relay's idle END", who, g.b, g.err)
						}
					case <-time.After(10 * time.Second):
						t.Errorf("%s: no END after %v of silence with an idle timeout of %v", who, 5*idle, idle)
					}
				}
				return
			}
			select {
			case g := <-ra:
				t.Fatalf("the controlling side's read ended while idle: %q, %v", g.b, g.err)
			case g := <-rb:
				t.Fatalf("the controlled side's read ended while idle: %q, %v", g.b, g.err)
			default:
			}
			if _, err := pa.Write([]byte("still here")); err != nil {
				t.Fatalf("writing after the idle spell: %v", err)
			}
			if _, err := pb.Write([]byte("me too")); err != nil {
				t.Fatalf("writing after the idle spell: %v", err)
			}
			for who, c := range map[string]struct {
				ch   <-chan got
				want string
			}{"controlled": {rb, "still here"}, "controlling": {ra, "me too"}} {
				select {
				case g := <-c.ch:
					if string(g.b) != c.want || (g.err != nil && g.err != io.EOF) {
						t.Errorf("%s read %q, %v; want %q", who, g.b, g.err, c.want)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s read nothing after the idle spell", who)
				}
			}
		})
	}
}
