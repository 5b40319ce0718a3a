package netcheck

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// Answer is a yes/no that may not have been measured.
type Answer uint8

const (
	NotMeasured Answer = iota
	Yes
	No
)

func (a Answer) String() string {
	switch a {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "not measured"
}

// Bool is a three-valued answer with the reason it is what it is.
type Bool struct {
	Answer Answer `json:"value"`
	Why    string `json:"why,omitempty"`
}

// MarshalText writes the answer's String.
func (a Answer) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Observation is one Binding of a mapping test.
type Observation struct {
	To     netip.AddrPort `json:"to"`     // the server address asked
	Mapped netip.AddrPort `json:"mapped"` // our endpoint as that address saw it
	// PortDelta is Mapped's port minus the first observation's: 0 for an
	// endpoint-independent mapping; a sequential NAT shows small steps.
	PortDelta int `json:"port_delta"`
}

// MappingResult is the mapping test's outcome.
type MappingResult struct {
	Class        rendezvous.Mapping `json:"-"`
	Why          string             `json:"why,omitempty"`
	Observations []Observation      `json:"observations"`
}

// FilteringResult is the filtering test's outcome.
type FilteringResult struct {
	Class rendezvous.Filtering `json:"-"`
	Why   string               `json:"why,omitempty"`
}

// Family is the report for one address family.
type Family struct {
	// Network is "ipv4" or "ipv6".
	Network string `json:"network"`
	// Tested says whether the server could be asked over this family at
	// all; Why says why not when it could not.
	Tested bool   `json:"tested"`
	Why    string `json:"why,omitempty"`
	// Server is the server address used, Local our reused endpoint (the
	// source address the kernel chose), Observed that endpoint as the
	// server saw it.
	Server   netip.AddrPort `json:"server"`
	Local    netip.AddrPort `json:"local"`
	Observed netip.AddrPort `json:"observed"`
	// RTT is the round-trip time of a Binding on an open connection.
	RTT time.Duration `json:"-"`
	// BehindNAT: the server saw another address or port than ours.
	BehindNAT Bool `json:"behind_nat"`
	// Mapping: how the NAT maps the reused port per destination.
	Mapping MappingResult `json:"mapping"`
	// PortPreserved: the NAT kept our local port (masquerade does while it
	// can; a fully-random NAT never does).
	PortPreserved Bool `json:"port_preserved"`
	// Filtering: what became of the server's dial-back from its
	// alternate address to our observed endpoint.
	Filtering FilteringResult `json:"filtering"`
	// Hairpin: a connection from another local port to our own observed
	// endpoint reached our listener through the NAT.
	Hairpin Bool `json:"hairpin"`
}

// Class is the family's NAT class, as Listen and Dial would send it.
func (f Family) Class() rendezvous.NATClass {
	return rendezvous.NATClass{Mapping: f.Mapping.Class, Filtering: f.Filtering.Class}
}

// Report is the outcome of [Run].
type Report struct {
	Server  string        `json:"server"`
	IPv4    Family        `json:"ipv4"`
	IPv6    Family        `json:"ipv6"`
	Elapsed time.Duration `json:"-"`
	// Advice is one line of plain advice (see [Advise]).
	Advice string `json:"advice"`
}

// JSON shapes: classes as their names, durations in milliseconds.

func (m MappingResult) MarshalJSON() ([]byte, error) {
	type plain MappingResult
	return json.Marshal(struct {
		Value string `json:"value"`
		plain
	}{m.Class.String(), plain(m)})
}

func (f FilteringResult) MarshalJSON() ([]byte, error) {
	type plain FilteringResult
	return json.Marshal(struct {
		Value string `json:"value"`
		plain
	}{f.Class.String(), plain(f)})
}

func (f Family) MarshalJSON() ([]byte, error) {
	type plain Family
	return json.Marshal(struct {
		plain
		RTTms float64 `json:"rtt_ms"`
	}{plain(f), ms(f.RTT)})
}

func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		ElapsedMS float64 `json:"elapsed_ms"`
	}{plain(r), ms(r.Elapsed)})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
