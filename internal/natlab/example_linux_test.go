//go:build linux

package natlab_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// Build a cell of the matrix and run programs in the peers' namespaces.
// (Needs root and the tools; see natlab.Check.)
func Example() {
	ctx := context.Background()
	if err := natlab.Check().Err(); err != nil {
		fmt.Println(err) // the demo falls back to loopback here
		return
	}
	sc, _ := natlab.Lookup("rst×rst-50ms")
	p, err := sc.Build(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close() // kills what runs inside, deletes the namespaces

	// Any program runs inside a namespace, in its own process group, as
	// with `ip netns exec`: here a listener on the rendezvous host and a
	// look at the sockets of peer a (the e2e tests run the tcpunch binary).
	srv := p.Rendezvous().Command(ctx, "sleep", "60")
	_ = srv.Start()
	out, _ := p.A.Command(ctx, "ss", "-tan").CombinedOutput()
	fmt.Printf("%s", out)

	// Go code runs in a namespace with Do (or the Listen/Dial helpers).
	ln, err := p.Rendezvous().Listen(ctx, "tcp", ":3478")
	if err == nil {
		defer ln.Close()
	}

	// Change the WAN conditions of a side while it runs.
	_ = p.SetDelay(p.B.Router(), 100*time.Millisecond)
}
