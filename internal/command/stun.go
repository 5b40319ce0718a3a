package command

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
	"github.com/tcpunch/tcpunch/sockopt"
)

// Stun prints the public mapping of one reused local port as each server
// sees it, then, with two or more servers, whether the NAT keeps one mapping
// for every destination (what punching needs) or makes one per destination
// (a symmetric NAT).
func Stun(ctx context.Context, servers []string, port int, timeout time.Duration, stdout, stderr io.Writer) error {
	if len(servers) == 0 {
		return usageError("missing SERVER: a STUN-over-TCP server as HOST:PORT (a tcpunch rendezvous server is one)")
	}
	if port < 0 || port > 65535 {
		return usageError("--port %d is not a TCP port", port)
	}
	local := netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))
	if port == 0 {
		// Every server must be asked from the same port, so pick it now.
		ln, err := sockopt.ListenConfig().Listen(ctx, "tcp4", local.String())
		if err != nil {
			return fmt.Errorf("choosing a local port: %w", err)
		}
		local = netip.MustParseAddrPort(ln.Addr().String())
		defer ln.Close()
	}
	var mapped []netip.AddrPort
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := rendezvous.MappedAddress(sctx, s, local)
		cancel()
		if err != nil {
			return &Error{Code: ExitRendezvous, Err: fmt.Errorf("asking %s for the mapping of local port %d: %w", s, local.Port(), err)}
		}
		mapped = append(mapped, m)
		if len(servers) == 1 {
			fmt.Fprintln(stdout, m)
		} else {
			fmt.Fprintf(stdout, "%s\t%v\n", s, m)
		}
	}
	if len(mapped) < 2 {
		return nil
	}
	for _, m := range mapped[1:] {
		if m != mapped[0] {
			fmt.Fprintf(stdout, "mapping changes per destination (local port %d): symmetric NAT; direct punching will fail\n", local.Port())
			return nil
		}
	}
	fmt.Fprintf(stdout, "mapping is the same for every destination (local port %d): endpoint-independent, punchable\n", local.Port())
	return nil
}
