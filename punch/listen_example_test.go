package punch_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// A service behind one NAT listens under a name; a client behind another
// dials the name. Both only need the rendezvous server's address. Here the
// server runs in-process on loopback; in real use it runs on a public host
// (`tcpunch serve`).
func ExampleListen() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rendezvous.NewServer()
	go srv.Serve(rln)
	defer srv.Close()
	rv := rln.Addr().String()

	// Both sides hold the same secret (tcpunch secret makes one; here,
	// punch.ParseSecret of what the user stored would do too).
	secret, err := punch.GenerateSecret()
	if err != nil {
		log.Fatal(err)
	}

	// The service: accept punched connections and greet each one.
	ln, err := punch.Listen(ctx, rv, "printer", punch.WithSecret(secret))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(conn, "hello from the printer")
			conn.Close()
		}
	}()

	// The client.
	conn, err := punch.Dial(ctx, rv, "printer", punch.WithSecret(secret))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	fmt.Println("direct:", conn.Info().Remote.Port() == ln.Addr().(*net.TCPAddr).AddrPort().Port())
	fmt.Println("authenticated by:", conn.Info().Auth)
	// Output:
	// hello from the printer
	// direct: true
	// authenticated by: secret
}
