package rendezvous

import "time"

// Tracer receives the server's events, for metrics. The server calls it
// synchronously from its connection goroutines: an implementation must be
// safe for concurrent use and must not block (count, don't log or do I/O).
//
// Every argument comes from a small fixed set or is a number: a Tracer is
// never given a name, an address or a tag, so nothing it exports can leak
// who uses the server. Implement only what you need by embedding
// [NopTracer]; methods added to Tracer later then keep their no-op.
//
// Package rendezvous only defines the interface; the Prometheus
// implementation lives beside the tcpunch command, so the library carries
// no metrics dependency.
type Tracer interface {
	// ConnAccepted is called for every connection the server takes from
	// its listener: refused is "" when it is served, else why it was
	// turned away at once (a limit, or the server shutting down).
	ConnAccepted(family Family, refused Refusal)
	// ConnClosed is called when a served connection (refused == "" above)
	// ends, with how long it was held.
	ConnClosed(family Family, held time.Duration)
	// Request is called once per request the server answers, with the
	// ERROR-CODE it sent (0 for a success response; see the Code
	// constants).
	Request(method RequestMethod, code int)
	// Listeners is called with the new number of registered names each
	// time a name is claimed or freed.
	Listeners(n int)
	// Refused is called for each request or connection refused by a
	// limit, once per refusal, beside the result above.
	Refused(reason Refusal)
	// Paired is called when a pairing has sent both peer-infos.
	Paired(p Pairing)
	// RelayStarted and RelayEnded bracket one relayed session (once the
	// server relays).
	RelayStarted()
	RelayEnded(s RelaySession)
	// PunchReported is called for each outcome report a client sends
	// after a punch, once the server has checked it against the fixed
	// sets below (an unknown value arrives as its Other constant).
	PunchReported(r PunchReport)
}

// Family is the address family of a connection's observed endpoint.
type Family string

const (
	FamilyIPv4 Family = "ipv4"
	FamilyIPv6 Family = "ipv6"
)

// Refusal is why the server turned a connection or a request away.
type Refusal string

const (
	RefusedNone         Refusal = ""
	RefusedPerIP        Refusal = "per_ip_limit"  // --max-conns-per-ip (429)
	RefusedCapacity     Refusal = "capacity"      // --max-conns (508)
	RefusedRateLimit    Refusal = "rate_limit"    // a rate limit (429)
	RefusedShuttingDown Refusal = "shutting_down" // drain in progress (503)
)

// RequestMethod is the method of a request the server answered.
type RequestMethod string

const (
	MethodBindingRequest  RequestMethod = "binding"
	MethodRegisterRequest RequestMethod = "register"
	MethodConnectRequest  RequestMethod = "connect"
	MethodPingRequest     RequestMethod = "ping"
	MethodRelayRequest    RequestMethod = "relay"    // a relay leg joining its session
	MethodDialBackRequest RequestMethod = "dialback" // a NAT check's dial-back
	MethodOtherRequest    RequestMethod = "other"    // a method unknown to the server
)

// Pairing describes one finished pairing of a dialer with a listener.
type Pairing struct {
	// Latency runs from the Connect request's arrival to the second
	// peer-info written: what the pairing cost the dialer.
	Latency time.Duration
	// Skew is the server's estimate of how far apart the two peer-infos
	// arrive: |(sendL + RTT_L/2) - (sendD + RTT_D/2)|, with the actual
	// send times, so timer lateness and a write that blocked count. Zero
	// is a perfectly synchronized start.
	Skew time.Duration
	// RTTSource is how the round-trip times were known: "kernel",
	// "ping" or "last-ping" (the less precise one of the two peers').
	RTTSource string
}

// RelaySession describes one relayed session that ended.
type RelaySession struct {
	BytesUp, BytesDown int64 // dialer→listener, listener→dialer
	Duration           time.Duration
	Reason             RelayEnd
}

// RelayEnd is why a relayed session ended.
type RelayEnd string

const (
	RelayEndClosed       RelayEnd = "closed"        // a peer closed
	RelayEndIdle         RelayEnd = "idle"          // idle timeout
	RelayEndByteLimit    RelayEnd = "byte_limit"    // the session's byte cap
	RelayEndTimeLimit    RelayEnd = "time_limit"    // the session's duration cap
	RelayEndShuttingDown RelayEnd = "shutting_down" // drain grace ran out
	RelayEndError        RelayEnd = "error"         // an I/O error
)

// PunchReport is one client's account of a punch (or a relay fallback).
type PunchReport struct {
	Path          PunchPath
	Method        PunchMethod
	TimeToConnect time.Duration
	Attempts      int
	LocalNAT      NATClass // the reporting peer's (the zero value: not measured)
	PeerNAT       NATClass // the other peer's, as the reporter knows it
}

// PunchPath is how the peers ended up connected, or that they did not.
type PunchPath string

const (
	PathDirect PunchPath = "direct"
	PathRelay  PunchPath = "relay"
	PathFailed PunchPath = "failed"
)

// PunchMethod is how the kernel made a direct connection (package punch's
// Method), from the reporter's side.
type PunchMethod string

const (
	PunchSimultaneousOpen PunchMethod = "simultaneous-open"
	PunchAccept           PunchMethod = "accept"
	PunchConnect          PunchMethod = "connect"
	PunchNone             PunchMethod = "none" // relayed or failed
	PunchOther            PunchMethod = "other"
)

// NopTracer does nothing. Embed it in a Tracer that implements only some
// methods. The server's default tracer is a NopTracer.
type NopTracer struct{}

func (NopTracer) ConnAccepted(Family, Refusal)     {}
func (NopTracer) ConnClosed(Family, time.Duration) {}
func (NopTracer) Request(RequestMethod, int)       {}
func (NopTracer) Listeners(int)                    {}
func (NopTracer) Refused(Refusal)                  {}
func (NopTracer) Paired(Pairing)                   {}
func (NopTracer) RelayStarted()                    {}
func (NopTracer) RelayEnded(RelaySession)          {}
func (NopTracer) PunchReported(PunchReport)        {}

var _ Tracer = NopTracer{}
