package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tcpunch/tcpunch/internal/natlab"
	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// benchNATCheck: what the quick NAT check (rendezvous.WithNATCheck, on in
// Listen and Dial) adds before the punch can start. For every one-way
// delay, drop×drop, one lab with two servers on its rendezvous host: one
// with a second address (--alt-addr), one without. cfg.Runs rounds; each
// round runs the four combinations (server with/without the alternate
// address × check on/off) in a rotating order, a fresh name each time, so
// load on the machine hits them alike. Measured inside the peer processes
// (`tcpunch bench natcheck-peer`): the listener's Listen call until it has
// registered, and the dialer's Dial call until its peer info event.
func benchNATCheck(ctx context.Context, cfg Config) error {
	if err := natlab.Check().Err(); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Out, "\n## What the quick NAT check adds to Listen and Dial (real-NAT lab, drop×drop, %d rounds)\n\n", cfg.Runs)
	fmt.Fprintf(cfg.Out, "One-way is the peer-to-peer delay; each peer is half of it from the server, so the RTT to the server (srv RTT) is the one-way figure. ")
	fmt.Fprintf(cfg.Out, "**registered** is Listen until registered, **peer info** Dial until its peer info event (both from the call, in-process). Floor without the check: 2 srv RTT each (TCP handshake, request).\n\n")
	fmt.Fprintf(cfg.Out, "| one-way | server | check | registered p50 | registered max | peer info p50 | peer info max | peer info − off (p50) | in srv RTTs | classes (dialer: ours / peer's) | ok |\n")
	fmt.Fprintf(cfg.Out, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, d := range cfg.Delays {
		if err := natCheckCell(ctx, cfg, d); err != nil {
			return err
		}
	}
	fmt.Fprintf(cfg.Out, "\nreproduce: `tcpunch bench --only natcheck --runs %d --delays %s`\n", cfg.Runs, delaysString(cfg.Delays))
	return nil
}

// natCheckAlt is the rendezvous host's second address: the lab hands out
// the internet segment upwards from .2.
var natCheckAlt = netip.MustParsePrefix("203.0.113.250/24")

type natCheckVariant struct {
	alt, check bool
}

func (v natCheckVariant) String() string {
	s := "single address"
	if v.alt {
		s = "--alt-addr"
	}
	if v.check {
		return s + ", on"
	}
	return s + ", off"
}

func natCheckCell(ctx context.Context, cfg Config, oneWay time.Duration) error {
	sc := natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Delay: oneWay, Direct: true}
	pair, err := sc.Build(ctx)
	if err != nil {
		return err
	}
	defer pair.Close()
	rdv := pair.Rendezvous()
	if err := rdv.AddAddr(natCheckAlt); err != nil {
		return err
	}
	servers := map[bool]string{}
	for alt, args := range map[bool][]string{
		true:  {"serve", "--listen", netip.AddrPortFrom(rdv.Addr(), 3478).String(), "--alt-addr", natCheckAlt.Addr().String()},
		false: {"serve", "--listen", netip.AddrPortFrom(rdv.Addr(), 4478).String()},
	} {
		srv, err := startReady(rdv.Command(ctx, cfg.Exe, args...))
		if err != nil {
			return err
		}
		defer srv.stop()
		servers[alt] = srv.addr
	}
	variants := []natCheckVariant{{true, true}, {true, false}, {false, true}, {false, false}}
	type samples struct {
		reg, info []float64
		classes   map[string]int
		fails     int
		firstErr  error
	}
	res := map[natCheckVariant]*samples{}
	for _, v := range variants {
		res[v] = &samples{classes: map[string]int{}}
	}
	for i := 0; i < cfg.Runs && ctx.Err() == nil; i++ {
		for j := range variants {
			v := variants[(i+j)%len(variants)]
			r, err := natCheckOnce(ctx, cfg, pair, servers[v.alt], v.check, fmt.Sprintf("nc%d-%d-%d", oneWay.Milliseconds(), i, j))
			s := res[v]
			if err != nil {
				s.fails++
				if s.firstErr == nil {
					s.firstErr = err
				}
				cfg.logf("natcheck %v %s run %d: %v", oneWay, v, i, err)
				continue
			}
			s.reg = append(s.reg, r.RegisteredMS)
			s.info = append(s.info, r.PeerInfoMS)
			s.classes[r.LocalClass+" / "+r.PeerClass]++
		}
	}
	srvRTT := ms(oneWay) // each peer is oneWay/2 from the server
	for _, v := range variants {
		s := res[v]
		if len(s.info) == 0 {
			return fmt.Errorf("natcheck %v %s: no run worked: %w", oneWay, v, s.firstErr)
		}
		base := median(res[natCheckVariant{v.alt, false}].info)
		added := median(s.info) - base
		inRTT := "–"
		if srvRTT > 0 {
			inRTT = fmt.Sprintf("%+.2f", added/srvRTT)
		}
		addedText := fmt.Sprintf("%+.1f ms", added)
		if !v.check {
			addedText, inRTT = "–", "–"
		}
		var classes []string
		for k, n := range s.classes {
			classes = append(classes, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(classes)
		fmt.Fprintf(cfg.Out, "| %.0f ms | %s | %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %s | %s | %s | %d/%d |\n",
			ms(oneWay), map[bool]string{true: "--alt-addr", false: "single address"}[v.alt], map[bool]string{true: "on", false: "off"}[v.check],
			median(s.reg), maxOf(s.reg), median(s.info), maxOf(s.info), addedText, inRTT, strings.Join(classes, ", "), len(s.info), len(s.info)+s.fails)
		cfg.logf("natcheck %v %s: registered p50 %.1f ms, peer info p50 %.1f ms", oneWay, v, median(s.reg), median(s.info))
	}
	return nil
}

// natCheckTiming is what natcheck-peer prints, one JSON line on stdout.
type natCheckTiming struct {
	RegisteredMS float64 `json:"registered_ms,omitempty"` // listen: Listen until registered
	PeerInfoMS   float64 `json:"peer_info_ms,omitempty"`  // dial: Dial until the peer info event
	LocalClass   string  `json:"local_class,omitempty"`   // dial: the classes of that event
	PeerClass    string  `json:"peer_class,omitempty"`
}

// natCheckOnce registers a listener behind a, dials it from behind b, and
// returns the listener's registration time with the dialer's peer info
// time and classes.
func natCheckOnce(ctx context.Context, cfg Config, pair *natlab.Pair, rv string, check bool, name string) (natCheckTiming, error) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := func(mode string) []string {
		return []string{"bench", "natcheck-peer", "--mode", mode, "--nat-check=" + strconv.FormatBool(check), "--rendezvous", rv, "--name", name}
	}
	lc := pair.A.Command(rctx, cfg.Exe, args("listen")...)
	lout, err := lc.StdoutPipe()
	if err != nil {
		return natCheckTiming{}, err
	}
	lc.Stderr = os.Stderr
	if err := lc.Start(); err != nil {
		return natCheckTiming{}, err
	}
	defer lc.Wait()
	var lt natCheckTiming
	if err := json.NewDecoder(lout).Decode(&lt); err != nil {
		return lt, fmt.Errorf("listener: no timing line: %w", err)
	}
	dout, err := pair.B.Command(rctx, cfg.Exe, args("dial")...).Output()
	if err != nil {
		return lt, fmt.Errorf("dialer: %w", err)
	}
	var dt natCheckTiming
	if err := json.Unmarshal(dout, &dt); err != nil {
		return lt, fmt.Errorf("dialer's timing line %q: %w", dout, err)
	}
	if err := lc.Wait(); err != nil {
		return lt, fmt.Errorf("listener: %w", err)
	}
	dt.RegisteredMS = lt.RegisteredMS
	return dt, nil
}

// natCheckPeerCommand is `tcpunch bench natcheck-peer`, run inside a lab
// namespace: Listen or Dial with the quick NAT check on or off, printing
// how long registering or getting the peer info took; the connection is
// closed at once.
func natCheckPeerCommand() *cli.Command {
	return &cli.Command{
		Name:   "natcheck-peer",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Required: true, Usage: "listen or dial"},
			&cli.BoolFlag{Name: "nat-check", Value: true},
			&cli.StringFlag{Name: "rendezvous", Required: true},
			&cli.StringFlag{Name: "name", Required: true},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, 20*time.Second)
			defer cancel()
			var (
				mu    sync.Mutex
				t     natCheckTiming
				start = time.Now()
			)
			opts := []punch.Option{punch.WithInsecure(), // it times the NAT check, not the link

				punch.WithRendezvousOptions(rendezvous.WithNATCheck(c.Bool("nat-check"))),
				punch.WithoutOutcomeReport(),
				punch.WithEvents(func(ev punch.Event) {
					if ev.Kind == punch.EventPeerInfo {
						mu.Lock()
						if t.PeerInfoMS == 0 {
							t.PeerInfoMS = ms(ev.Time.Sub(start))
							t.LocalClass, t.PeerClass = ev.LocalClass.Mapping.String(), ev.PeerClass.Mapping.String()
						}
						mu.Unlock()
					}
				}),
			}
			enc := json.NewEncoder(os.Stdout)
			switch c.String("mode") {
			case "listen":
				ln, err := punch.Listen(ctx, c.String("rendezvous"), c.String("name"), opts...)
				if err != nil {
					return err
				}
				defer ln.Close()
				if err := enc.Encode(natCheckTiming{RegisteredMS: ms(time.Since(start))}); err != nil {
					return err
				}
				conn, err := ln.Accept()
				if err != nil {
					return err
				}
				return conn.Close()
			case "dial":
				conn, err := punch.Dial(ctx, c.String("rendezvous"), c.String("name"), opts...)
				if err != nil {
					return err
				}
				conn.Close()
				mu.Lock()
				defer mu.Unlock()
				if t.PeerInfoMS == 0 {
					return errors.New("connected without a peer info event")
				}
				return enc.Encode(t)
			}
			return fmt.Errorf("unknown --mode %q", c.String("mode"))
		},
	}
}
