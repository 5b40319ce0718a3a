package punch_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

// Two peers on one machine, each with its own Endpoint, punch to each other
// and exchange a line. Across NATs the candidates and the tag come from a
// rendezvous; here they are simply swapped.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Each peer listens on its port first, so its dials can share it.
	alice, err := punch.NewEndpoint(ctx, netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := punch.NewEndpoint(ctx, netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	tag := [16]byte{'s', 'h', 'a', 'r', 'e', 'd', ' ', 't', 'a', 'g'} // random, from the rendezvous

	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := bob.Punch(ctx, punch.Session{
			Candidates: []netip.AddrPort{alice.Addr()},
			Role:       punch.RoleControlled,
			Tag:        tag,
		})
		if err != nil {
			log.Fatal(err)
		}
		defer conn.Close()
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print("bob got: ", line)
		fmt.Fprintln(conn, "hi alice")
	}()

	conn, err := alice.Punch(ctx, punch.Session{
		Candidates: []netip.AddrPort{bob.Addr()},
		Role:       punch.RoleControlling,
		Tag:        tag,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, "hi bob")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	<-done
	fmt.Print("alice got: ", line)
	fmt.Println("direct:", conn.Info().Remote == bob.Addr())
	// Output:
	// bob got: hi bob
	// alice got: hi alice
	// direct: true
}

// A failed punch says why, per candidate.
func ExamplePunch_failure() {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := punch.Punch(ctx, netip.MustParseAddrPort("127.0.0.1:0"), punch.Session{
		Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}, // nothing listens there
		Role:       punch.RoleControlling,
	})
	var perr *punch.Error
	if errors.As(err, &perr) {
		fmt.Println("timed out:", errors.Is(err, punch.ErrTimeout), errors.Is(err, context.DeadlineExceeded))
		fmt.Println("candidate:", perr.Candidates[0].Addr, "retried:", perr.Candidates[0].Attempts > 1)
	}
	// Output:
	// timed out: true true
	// candidate: 127.0.0.1:1 retried: true
}
