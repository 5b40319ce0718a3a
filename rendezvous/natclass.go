package rendezvous

import "fmt"

// Mapping is how a NAT maps one local endpoint (address and port) for
// different destinations, in the terms of RFC 4787 §4.1 applied to TCP.
// Only an endpoint-independent mapping keeps the endpoint the rendezvous
// observed valid for the peer: every other one gives the peer's SYN a
// mapping nobody was told about.
type Mapping uint8

const (
	// MappingNotMeasured: no test ran, or it could not decide (the server
	// has no second address, a probe failed).
	MappingNotMeasured Mapping = iota
	// MappingNone: no NAT; the server saw our own address and port.
	MappingNone
	// MappingEndpointIndependent: one public endpoint for every
	// destination (RFC 5382 REQ-1). Punchable.
	MappingEndpointIndependent
	// MappingAddressDependent: a new public endpoint per destination
	// address; the same for two ports of one address.
	MappingAddressDependent
	// MappingAddressPortDependent: a new public endpoint per destination
	// address and port (a "symmetric" NAT; Linux masquerade fully-random).
	MappingAddressPortDependent
	// MappingEndpointDependent: the public endpoint changes with the
	// destination, but only one other destination was tried, so address
	// and address-and-port dependence are not told apart (the quick check
	// of Listen and Dial).
	MappingEndpointDependent
)

var mappingNames = [...]string{
	MappingNotMeasured:          "not measured",
	MappingNone:                 "none",
	MappingEndpointIndependent:  "endpoint-independent",
	MappingAddressDependent:     "address-dependent",
	MappingAddressPortDependent: "address-and-port-dependent",
	MappingEndpointDependent:    "endpoint-dependent",
}

func (m Mapping) String() string {
	if int(m) < len(mappingNames) {
		return mappingNames[m]
	}
	return fmt.Sprintf("Mapping(%d)", uint8(m))
}

// Symmetric reports whether the mapping changes with the destination:
// the observed endpoint the rendezvous hands out is then useless to a peer
// that must reach us through it.
func (m Mapping) Symmetric() bool {
	return m == MappingAddressDependent || m == MappingAddressPortDependent || m == MappingEndpointDependent
}

// Filtering is what a NAT (or firewall) does with an unsolicited SYN from a
// host we never sent to, arriving at a port we have a mapping for.
type Filtering uint8

const (
	// FilteringNotMeasured: no dial-back ran (the server has no second
	// address, refused, or the result was not conclusive).
	FilteringNotMeasured Filtering = iota
	// FilteringAccepted: the SYN reached our listener (endpoint-independent
	// filtering, or no NAT and no firewall).
	FilteringAccepted
	// FilteringRST: the SYN was answered with a RST (a rejecting NAT, or a
	// router's own stack). Punching needs both SYNs in flight together.
	FilteringRST
	// FilteringSilent: the SYN vanished (a dropping NAT, the common home
	// router).
	FilteringSilent
)

var filteringNames = [...]string{
	FilteringNotMeasured: "not measured",
	FilteringAccepted:    "accepted",
	FilteringRST:         "rst",
	FilteringSilent:      "silent",
}

func (f Filtering) String() string {
	if int(f) < len(filteringNames) {
		return filteringNames[f]
	}
	return fmt.Sprintf("Filtering(%d)", uint8(f))
}

// NATClass is the NAT behaviour of one reused local port as measured from
// it: what Listen and Dial send the server inside Register and Connect
// (attribute NAT-CLASS), and what [PeerInfo] carries about the peer.
// The zero value is "not measured".
type NATClass struct {
	Mapping   Mapping
	Filtering Filtering
}

func (c NATClass) String() string {
	return fmt.Sprintf("mapping %v, filtering %v", c.Mapping, c.Filtering)
}

// Measured reports whether anything is known.
func (c NATClass) Measured() bool {
	return c.Mapping != MappingNotMeasured || c.Filtering != FilteringNotMeasured
}

// encodeClass is NAT-CLASS's value: mapping, filtering, two zero bytes.
func encodeClass(c NATClass) []byte { return []byte{byte(c.Mapping), byte(c.Filtering), 0, 0} }

// decodeClass reads NAT-CLASS. It is a comprehension-optional hint: values
// this version does not know read as "not measured".
func decodeClass(v []byte) (NATClass, bool) {
	if len(v) != 4 {
		return NATClass{}, false
	}
	c := NATClass{Mapping: Mapping(v[0]), Filtering: Filtering(v[1])}
	if int(c.Mapping) >= len(mappingNames) {
		c.Mapping = MappingNotMeasured
	}
	if int(c.Filtering) >= len(filteringNames) {
		c.Filtering = FilteringNotMeasured
	}
	return c, true
}
