package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tcpunch/tcpunch/punch"
)

// progress prints the human account of a punch on stderr, one line an
// event. Without verbose, attempts are shown only at 1, 2, 4, 8 … per
// candidate, each with why the one before failed, and rejected candidates
// not at all: a punch through an RST-answering NAT makes hundreds of
// attempts.
type progress struct {
	mu         sync.Mutex
	w          io.Writer
	verbose    bool
	start      time.Time
	peers      map[netip.AddrPort]*punch.Event // peer-info by the peer's observed endpoint, to explain failures with
	last       *punch.Event
	timeout    time.Duration
	attempts   map[netip.AddrPort]error // why the last attempt to a candidate failed
	reportJSON bool                     // --report json: the upgrade gets a line too
	trust      trust                    // what the user called the peer, for the peer-found line
}

func newProgress(w io.Writer, verbose bool, timeout time.Duration) *progress {
	return &progress{w: w, verbose: verbose, start: time.Now(), timeout: timeout}
}

func (p *progress) event(ev punch.Event) {
	var line string
	switch ev.Kind {
	case punch.EventRegistered:
		line = fmt.Sprintf("registered at the rendezvous; public endpoint %v", ev.Addr)
	case punch.EventPeerInfo:
		p.mu.Lock()
		if p.peers == nil {
			p.peers = map[netip.AddrPort]*punch.Event{}
		}
		p.peers[ev.Addr], p.last = &ev, &ev
		p.mu.Unlock()
		line = p.peerFound(ev)
		if p.verbose {
			p.printf("%s", line)
			if server := p.serverName(ev); server != "" {
				p.printf("%s", server)
			}
			line = fmt.Sprintf("NAT classes before punching: ours %v; the peer's %v", ev.LocalClass, ev.PeerClass)
		}
	case punch.EventAttempt:
		if line = p.attempt(ev); line == "" {
			return
		}
	case punch.EventSelfConnect:
		line = fmt.Sprintf("closed a connection to ourselves via %v (self-connect guard)", ev.Addr)
	case punch.EventRejected:
		if !p.verbose {
			return
		}
		line = fmt.Sprintf("refused a connection from %v: %v", ev.Addr, ev.Err)
	case punch.EventVerified:
		if !p.verbose {
			return
		}
		line = fmt.Sprintf("verified %v (%v)", ev.Addr, ev.Method)
	case punch.EventConnected:
		return // printed by connected, with the timing
	case punch.EventRelaying, punch.EventRelayFailed:
		line = relayLine(ev)
	case punch.EventUpgraded:
		up := ev.Upgrade
		p.printf("%s (path: direct to %v; the stream moved off the relay, nothing lost; stall %s)", ev.Detail, ev.Addr, stallSummary(up))
		p.mu.Lock()
		asJSON := p.reportJSON
		p.mu.Unlock()
		if asJSON {
			r := upgradeReport{Path: "direct", UpgradedFrom: "relay", UpgradedAfterMS: ms(ev.Elapsed),
				Remote: ev.Addr.String(), Round: up.Round, StallMS: ms(up.Stall()), WriteStallMS: ms(up.WriteStall)}
			if up.ReadStallMeasured {
				rs := ms(up.ReadStall)
				r.ReadStallMS = &rs
			}
			line, _ := json.Marshal(r)
			p.mu.Lock()
			fmt.Fprintf(p.w, "%s\n", line)
			p.mu.Unlock()
		}
		return
	case punch.EventFailed:
		peer := p.peerInfo(ev.Addr)
		if errors.Is(ev.Err, context.Canceled) {
			// The listener is stopping (SIGINT/SIGTERM), not timing out.
			line = fmt.Sprintf("punch with the dialer at %v cut short after %v: the listener is stopping", ev.Addr, punchElapsed(peer, ev))
			break
		}
		if errors.Is(ev.Err, punch.ErrAuthFailed) || errors.Is(ev.Err, punch.ErrCodeRetired) {
			line = fmt.Sprintf("refused the dialer at %v: it failed authentication (wrong secret or code, or someone in the middle); nothing was delivered (still listening)", ev.Addr)
			break
		}
		line = fmt.Sprintf("%v (still listening)", explain("the dialer at "+ev.Addr.String(), p.timeout, peer, ev.Err))
	default:
		if !p.verbose {
			return
		}
		line = fmt.Sprintf("%v %v %s", ev.Kind, ev.Addr, ev.Detail)
	}
	p.printf("%s", line)
}

// setTrust says how the user named the peer; listen calls it again when a
// taken nameplate made it pick another code.
func (p *progress) setTrust(tr trust) {
	tr.secret = punch.Secret{} // only the names are printed; keep no copy of the key
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trust = tr
}

// peerFound is the line for a peer-info event. It names the peer as the
// user did: the label, not the name derived from it that the server sees
// (pk-…); for a code only the nameplate, since the words are a password
// and stderr ends up in logs.
func (p *progress) peerFound(ev punch.Event) string {
	p.mu.Lock()
	tr := p.trust
	p.mu.Unlock()
	var who string
	switch tr.mode {
	case punch.AuthSecret, punch.AuthInsecure:
		who = strconv.Quote(tr.label)
	case punch.AuthCode:
		nameplate, _, _ := strings.Cut(tr.code.String(), "-")
		who = "code " + nameplate
	default:
		return "peer found: " + ev.Detail // a caller that did not say
	}
	if len(ev.Candidates) == 0 {
		return fmt.Sprintf("peer found: %s at %v; we are %v", who, ev.Addr, ev.Observed)
	}
	return fmt.Sprintf("peer found: %s at %v (candidates %v); we are %v", who, ev.Addr, ev.Candidates, ev.Observed)
}

// serverName is the -v line saying which name the server knows the peer by,
// when it is not the label: the event's detail begins with it, quoted.
func (p *progress) serverName(ev punch.Event) string {
	p.mu.Lock()
	tr := p.trust
	p.mu.Unlock()
	quoted, err := strconv.QuotedPrefix(ev.Detail)
	if err != nil {
		return ""
	}
	name, err := strconv.Unquote(quoted)
	if err != nil || name == "" {
		return ""
	}
	switch tr.mode {
	case punch.AuthSecret:
		return fmt.Sprintf("the rendezvous knows %q as %q, derived from the secret and the label (it learns neither)", tr.label, name)
	case punch.AuthCode:
		return fmt.Sprintf("the rendezvous knows the code as its nameplate %q (it never sees the words)", name)
	}
	return ""
}

// attempt is the line for an attempt event, or "" when it is not shown.
func (p *progress) attempt(ev punch.Event) string {
	if p.verbose {
		line := fmt.Sprintf("attempt %d to %v", ev.Attempt, ev.Addr)
		if ev.Err != nil {
			line += ": " + rootCause(ev.Err)
		}
		return line
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Err != nil {
		if p.attempts == nil {
			p.attempts = map[netip.AddrPort]error{}
		}
		p.attempts[ev.Addr] = ev.Err
		return ""
	}
	if ev.Attempt&(ev.Attempt-1) != 0 {
		return ""
	}
	line := fmt.Sprintf("attempt %d to %v", ev.Attempt, ev.Addr)
	if err := p.attempts[ev.Addr]; err != nil {
		line += fmt.Sprintf(" (last: %s)", rootCause(err))
	}
	return line
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verbose {
		fmt.Fprintf(p.w, "tcpunch: [%6.1f ms] %s\n", float64(time.Since(p.start).Microseconds())/1000, fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(p.w, "tcpunch: %s\n", fmt.Sprintf(format, args...))
}

// upgradeReport is the --report json line when a relayed connection
// moved to a direct one: the fields of punch.Info.Upgrade.
type upgradeReport struct {
	Path            string  `json:"path"`          // direct
	UpgradedFrom    string  `json:"upgraded_from"` // relay
	UpgradedAfterMS float64 `json:"upgraded_after_ms"`
	Remote          string  `json:"remote"` // the direct connection's peer endpoint
	Round           int     `json:"round"`  // 0: the session's own ports; r ≥ 1: the r-th round on fresh ports
	// StallMS is the longer of the read and the write stall;
	// ReadStallMS is absent when it was not measured (no byte came on the
	// direct connection within 2 s of the peer's marker).
	StallMS      float64  `json:"stall_ms"`
	ReadStallMS  *float64 `json:"read_stall_ms,omitempty"`
	WriteStallMS float64  `json:"write_stall_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// stallSummary is the move's stall for the progress line.
func stallSummary(up punch.Upgrade) string {
	if !up.ReadStallMeasured {
		return fmt.Sprintf("%.1f ms writing; reading not measured", ms(up.WriteStall))
	}
	return fmt.Sprintf("%.1f ms reading, %.1f ms writing", ms(up.ReadStall), ms(up.WriteStall))
}

// report is the --report json line for one punched connection.
type report struct {
	Local        string         `json:"local"`
	Remote       string         `json:"remote"`
	Method       string         `json:"method"`
	ElapsedMS    float64        `json:"elapsed_ms"`
	Attempts     int            `json:"attempts"`
	PerCandidate map[string]int `json:"attempts_per_candidate,omitempty"`
	SelfConnects int            `json:"self_connects"`
	Path         string         `json:"path"`         // direct or relay
	Auth         string         `json:"auth"`         // secret, code or insecure
	HandshakeMS  float64        `json:"handshake_ms"` // the secure link's handshake after the punch
}

func (p *progress) connected(info punch.Info, asJSON bool) {
	if info.Path == punch.PathRelay {
		p.printf("connected through the relay at %v in %.1f ms (path: relay; no direct connection; %s)", info.Remote, float64(info.Elapsed.Microseconds())/1000, authSummary(info))
	} else {
		p.printf("connected to %v via %v in %.1f ms (path: direct; %s)", info.Remote, info.Method, float64(info.Elapsed.Microseconds())/1000, authSummary(info))
	}
	if !asJSON {
		return
	}
	p.mu.Lock()
	p.reportJSON = true
	p.mu.Unlock()
	r := report{
		Local:        info.Local.String(),
		Remote:       info.Remote.String(),
		Method:       info.Method.String(),
		ElapsedMS:    float64(info.Elapsed.Microseconds()) / 1000,
		SelfConnects: info.SelfConnects,
		Path:         info.Path.String(),
		PerCandidate: map[string]int{},
		Auth:         info.Auth,
		HandshakeMS:  float64(info.Handshake.Microseconds()) / 1000,
	}
	for addr, n := range info.Attempts {
		r.Attempts += n
		r.PerCandidate[addr.String()] = n
	}
	line, _ := json.Marshal(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s\n", line)
}

// peerInfo is the peer-info event of the peer at addr (the last one seen
// when addr is zero), or nil.
func (p *progress) peerInfo(addr netip.AddrPort) *punch.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !addr.IsValid() {
		return p.last
	}
	return p.peers[addr]
}

// punchElapsed is how long the punch that failed with ev ran: since the
// peer-info event that started it.
func punchElapsed(peer *punch.Event, ev punch.Event) time.Duration {
	if peer == nil {
		return 0
	}
	return ev.Time.Sub(peer.Time).Round(100 * time.Millisecond)
}

// plural is "1 attempt", "2 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// authSummary says how the connection was secured, for the connected line.
func authSummary(info punch.Info) string {
	switch info.Auth {
	case punch.AuthSecret, punch.AuthCode:
		return fmt.Sprintf("TLS 1.3, authenticated by the %s, handshake %.1f ms", info.Auth, float64(info.Handshake.Microseconds())/1000)
	}
	return "insecure: plaintext, not authenticated"
}
