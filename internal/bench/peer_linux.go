package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/punch"
)

// peerCommand is `tcpunch bench peer`, run inside a lab namespace by the
// data-path benchmark: it gets a connection (punched through the
// rendezvous, or plain TCP) and sends or receives on it with the same
// loop either way, so the two differ only in how the connection was made.
func peerCommand() *cli.Command {
	return &cli.Command{
		Name:   "peer",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Required: true, Usage: "listen, dial, plain-listen or plain-dial"},
			&cli.StringFlag{Name: "rendezvous"},
			&cli.StringFlag{Name: "name"},
			&cli.StringFlag{Name: "addr", Usage: "plain-listen: where to listen; plain-dial: where to connect"},
			&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "how long the sender sends"},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("duration")+30*time.Second)
			defer cancel()
			var conn net.Conn
			var err error
			switch c.String("mode") {
			case "listen":
				var ln net.Listener
				if ln, err = punch.Listen(ctx, c.String("rendezvous"), c.String("name"), punch.WithInsecure()); err == nil {
					fmt.Fprintln(os.Stderr, "ready")
					conn, err = ln.Accept()
					ln.Close()
				}
			case "plain-listen":
				var ln net.Listener
				if ln, err = net.Listen("tcp", c.String("addr")); err == nil {
					fmt.Fprintln(os.Stderr, "ready")
					conn, err = ln.Accept()
					ln.Close()
				}
			case "dial":
				conn, err = punch.Dial(ctx, c.String("rendezvous"), c.String("name"), punch.WithInsecure())
			case "plain-dial":
				var d net.Dialer
				conn, err = d.DialContext(ctx, "tcp", c.String("addr"))
			default:
				return fmt.Errorf("unknown --mode %q", c.String("mode"))
			}
			if err != nil {
				return err
			}
			defer conn.Close()
			stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
			defer stop()
			if c.String("mode") == "dial" || c.String("mode") == "plain-dial" {
				return send(conn, c.Duration("duration"))
			}
			return receive(conn, os.Stdout)
		},
	}
}

const chunk = 128 << 10

func send(c net.Conn, d time.Duration) error {
	buf := make([]byte, chunk)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// Wait for the receiver to close: everything arrived.
	_, err := io.Copy(io.Discard, c)
	return err
}

// goodput is what a receiver measured: from the first byte to EOF.
type goodput struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

func (g goodput) mbps() float64 { return float64(g.Bytes) * 8 / g.Seconds / 1e6 }

func receive(c io.Reader, out io.Writer) error {
	g, err := count(c)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(g)
}

func count(r io.Reader) (goodput, error) {
	buf := make([]byte, chunk)
	var g goodput
	var first time.Time
	for {
		n, err := r.Read(buf)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		g.Bytes += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return g, err
		}
	}
	if first.IsZero() {
		return g, errors.New("no data received")
	}
	g.Seconds = time.Since(first).Seconds()
	return g, nil
}
