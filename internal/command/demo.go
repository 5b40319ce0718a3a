package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// DemoConfig is what `tcpunch demo` takes.
type DemoConfig struct {
	Loopback bool          // skip the NAT lab even when it could run
	Scenario string        // a lab scenario by name (natlab.Lookup); "" is drop×drop
	Delay    time.Duration // one-way delay between the peers, in the lab; overrides the scenario's
	Verbose  bool
	Stdout   io.Writer
}

// demoRunner starts one tcpunch process somewhere: in a lab namespace or
// on this host.
type demoRunner func(ctx context.Context, args ...string) *exec.Cmd

// Demo runs a rendezvous server and two peers as separate tcpunch
// processes, punches, sends a line each way and prints a merged timeline.
// As root with the lab's tools, the peers sit behind two real Linux NATs
// in network namespaces; otherwise everything runs on loopback.
func Demo(ctx context.Context, cfg DemoConfig) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the tcpunch binary to run: %w", err)
	}
	out := cfg.Stdout
	tl := &timeline{w: out, start: time.Now()}
	sc := natlab.Scenario{Name: "drop×drop", A: natlab.Side{NAT: natlab.NATDrop}, B: natlab.Side{NAT: natlab.NATDrop}, Direct: true}
	if cfg.Scenario != "" {
		if cfg.Loopback {
			return usageError("--scenario needs the NAT lab; it cannot be combined with --loopback")
		}
		if sc, err = natlab.Lookup(cfg.Scenario); err != nil {
			return usageError("--scenario: %v", err)
		}
	}
	if cfg.Delay > 0 {
		sc.Delay = cfg.Delay
	}

	var serverAt, rendezvous string
	var serverArgs []string // more flags of the server
	var a, b, server demoRunner
	var aDesc, bDesc string
	if st := natlab.Check(); cfg.Loopback || st.Err() != nil {
		if cfg.Scenario != "" {
			return fmt.Errorf("--scenario %s needs the real-NAT lab, which cannot run here: %s", sc.Name, labAdvice(st))
		}
		if !cfg.Loopback {
			fmt.Fprintf(out, "The real-NAT lab cannot run here, so this demo runs on loopback (no NAT at all).\n  %s\n\n", labAdvice(st))
		} else {
			fmt.Fprintf(out, "Running on loopback (no NAT), as asked.\n\n")
		}
		local := func(ctx context.Context, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, exe, args...)
		}
		a, b, server = local, local, local
		serverAt, aDesc, bDesc = "127.0.0.1:0", "127.0.0.1", "127.0.0.1"
	} else {
		pair, err := sc.Build(ctx)
		if err != nil {
			return fmt.Errorf("building the NAT lab: %w", err)
		}
		defer pair.Close()
		if !sc.IPv6 {
			for _, h := range []nsHost{pair.A, pair.B} {
				if err := ipv4Only(h); err != nil {
					return fmt.Errorf("building the NAT lab: %w", err)
				}
			}
		}
		a = func(ctx context.Context, args ...string) *exec.Cmd { return pair.A.Command(ctx, exe, args...) }
		b = func(ctx context.Context, args ...string) *exec.Cmd { return pair.B.Command(ctx, exe, args...) }
		server = func(ctx context.Context, args ...string) *exec.Cmd {
			return pair.Rendezvous().Command(ctx, exe, args...)
		}
		serverAt = netip.AddrPortFrom(pair.RendezvousAddr(), 3478).String()
		// A second server address lets both peers measure their NAT
		// (mapping, filtering), so a failure names the NAT in the way.
		alt, err := pair.AddRendezvousAlt()
		if err != nil {
			return fmt.Errorf("giving the rendezvous host its second address: %w", err)
		}
		serverArgs = append(serverArgs, "--alt-addr", alt.String())
		aDesc, bDesc = describeHost(pair, pair.A), describeHost(pair, pair.B)
		fmt.Fprintf(out, "A real NAT lab in network namespaces, scenario %s:\n", sc.Name)
		fmt.Fprintf(out, "  rendezvous  %v\n  peer a      %s\n  peer b      %s\n", pair.RendezvousAddr(), aDesc, bDesc)
		if sc.Delay > 0 || sc.Loss > 0 {
			fmt.Fprintf(out, "  between the peers: %v one way, %.0f%% loss per link\n", sc.Delay, 100*sc.Loss)
		}
		if !sc.Direct {
			fmt.Fprintf(out, "  (no direct path is expected here: watch how tcpunch says so)\n")
		}
		fmt.Fprintln(out)
	}

	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	srv, err := tl.spawn(server(ctx, append([]string{"serve", "--listen", serverAt}, serverArgs...)...), "server", nil, nil, nil)
	if err != nil {
		return err
	}
	defer srv.stop()
	if rendezvous, err = srv.waitReady(ctx); err != nil {
		return fmt.Errorf("the rendezvous server did not start: %w", err)
	}

	msgA := fmt.Sprintf("hello from peer a (%s)\n", aDesc)
	msgB := fmt.Sprintf("hello from peer b (%s)\n", bDesc)
	var gotA, gotB bytes.Buffer
	var reportB string
	// The peers share a fresh secret, as users' peers do. The demo shows
	// the punch; a scenario without a direct path ends with exit 3 as it
	// explains, rather than relaying.
	secretFile, err := demoSecret()
	if err != nil {
		return err
	}
	defer os.Remove(secretFile)
	peerArgs := []string{"--report", "json", "--relay", "never", "--secret-file", secretFile, "demo"}
	if cfg.Verbose {
		peerArgs = append([]string{"-v"}, peerArgs...)
	}
	pa, err := tl.spawn(a(ctx, append([]string{"listen", "-r", rendezvous}, peerArgs...)...), "peer a", strings.NewReader(msgA), &gotA, nil)
	if err != nil {
		return err
	}
	defer pa.stop()
	// The listener registers first, as a service behind NAT would have.
	if _, err := pa.waitReady(ctx); err != nil {
		return fmt.Errorf("peer a did not register: %w", err)
	}
	pb, err := tl.spawn(b(ctx, append([]string{"dial", "-r", rendezvous}, peerArgs...)...), "peer b", strings.NewReader(msgB), &gotB, func(line string) {
		if strings.HasPrefix(line, "{") {
			reportB = line
		}
	})
	if err != nil {
		return err
	}
	errB := pb.wait()
	if errB != nil {
		// Peer a, a listener, would wait for another dialer until ctx ends.
		pa.interrupt()
	}
	errA := pa.wait()
	srv.stop()
	fmt.Fprintln(out)
	var exitB *exec.ExitError
	if errors.As(errB, &exitB) && exitB.ExitCode() == ExitNoPath {
		verdict := "a direct path was expected here"
		if !sc.Direct {
			verdict = "as expected for " + sc.Name
		}
		return &Error{Code: ExitNoPath, Err: fmt.Errorf("demo: the peers found no direct path (%s); peer b's last line says why", verdict)}
	}
	if errA != nil || errB != nil {
		return fmt.Errorf("demo failed: peer a: %v, peer b: %v", errA, errB)
	}
	fmt.Fprintf(out, "peer a received: %s", gotA.String())
	fmt.Fprintf(out, "peer b received: %s", gotB.String())
	if gotA.String() != msgB || gotB.String() != msgA {
		return errors.New("demo failed: the data did not arrive intact")
	}
	if reportB != "" {
		var r report
		if json.Unmarshal([]byte(reportB), &r) == nil {
			fmt.Fprintf(out, "\nDirect connection %s <-> %s via %s in %.1f ms (%s).\n",
				r.Local, r.Remote, r.Method, r.ElapsedMS, plural(r.Attempts, "attempt"))
		}
	}
	return nil
}

// describeHost says where a demo peer sits: its address and the NATs in
// front of it.
func describeHost(p *natlab.Pair, h *natlab.Host) string {
	desc := p.Addr(h).String()
	if h.Router() == nil {
		return desc + ", a public host"
	}
	for r := h.Router(); r != nil; r = r.Router() {
		if p.Scenario.IPv6 {
			desc += fmt.Sprintf(" behind router %v's stateful firewall (IPv6 is not translated)", r.Addr())
			continue
		}
		desc += fmt.Sprintf(" behind a %s NAT at %v", natWords(r.Kind()), r.Addr())
	}
	return desc
}

func natWords(k natlab.NATKind) string {
	switch k {
	case natlab.NATDrop:
		return "home-router (drops unsolicited SYNs)"
	case natlab.NATReject:
		return "RST-answering"
	case natlab.NATOpen:
		return "firewall-less"
	case natlab.NATSymmetric:
		return "symmetric"
	case natlab.NATSymmetricRandom:
		return "symmetric (masquerade random)"
	}
	return k.String()
}

// labAdvice says what a demo user can do to get the real-NAT lab. The lab
// needs nothing installed, so [natlab.Check] fails only off Linux or
// without root.
func labAdvice(st natlab.Status) string {
	if st.OS != "linux" {
		return "The lab needs Linux network namespaces; this is " + st.OS + "."
	}
	return "For two real Linux NATs, run it as root (sudo tcpunch demo); nothing needs to be installed."
}
