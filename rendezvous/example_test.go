package rendezvous_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// An application embeds the rendezvous server: serve on a listener, shut
// down gracefully. net.Listen keeps the kernel's somaxconn backlog.
func ExampleNewServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rendezvous.NewServer(
		rendezvous.WithLogger(slog.New(slog.DiscardHandler)),
		rendezvous.WithMaxConnsPerIP(32),
		rendezvous.WithIdleTimeout(2*time.Minute),
	)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	// ... peers register and connect ...

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-done == rendezvous.ErrServerClosed)
	// Output: true
}

// MappedAddress asks any STUN-over-TCP server (a tcpunch server here) how
// it sees a local port: behind a NAT, the public mapping.
func ExampleMappedAddress() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rendezvous.NewServer()
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	local := netip.MustParseAddrPort("127.0.0.1:0")
	mapped, err := rendezvous.MappedAddress(ctx, ln.Addr().String(), local)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(mapped.Addr())
	// Output: 127.0.0.1
}
