package netcheck

import "github.com/tcpunch/tcpunch/rendezvous"

// Advise is one line of plain advice from a report: what direct TCP
// punching from here will and will not do. IPv4 decides when it was
// tested (peers mostly meet over IPv4); else IPv6.
func Advise(r *Report) string {
	f := r.IPv4
	if !f.Tested {
		f = r.IPv6
	}
	if !f.Tested {
		return "the server could not be reached over IPv4 or IPv6: check the address, and that TCP to it is let through"
	}
	m, flt := f.Mapping.Class, f.Filtering.Class
	switch {
	case flt == rendezvous.FilteringAccepted:
		return "this host accepts connections from anywhere on this port: direct TCP will work with any peer, even one behind a symmetric NAT"
	case m == rendezvous.MappingNone && (flt == rendezvous.FilteringRST || flt == rendezvous.FilteringSilent):
		return "no NAT here, but a firewall filters unsolicited connections: direct TCP punching will work with peers behind endpoint-independent NATs; a peer behind a symmetric NAT will need the relay"
	case m == rendezvous.MappingNone:
		return "no NAT here (not measured whether anything filters inbound connections): direct TCP punching will work with peers behind endpoint-independent NATs, and with any peer if nothing filters; a peer behind a symmetric NAT may need the relay"
	case m == rendezvous.MappingEndpointIndependent && flt == rendezvous.FilteringRST:
		return "direct TCP punching will work with peers behind endpoint-independent NATs (your NAT answers stray SYNs with RST, so both SYNs must cross at once: tcpunch times them); a peer behind a symmetric NAT will need the relay"
	case m == rendezvous.MappingEndpointIndependent:
		return "direct TCP punching will work with peers behind endpoint-independent NATs; a peer behind a symmetric NAT will need the relay"
	case m.Symmetric():
		return "your NAT is symmetric (a new public port per destination): direct TCP will work only with peers that accept connections from anywhere; every other peer will need the relay"
	}
	// Not measured. Port preservation is only a hint (an
	// endpoint-independent NAT may renumber a port already in use, and
	// some symmetric NATs keep the first one), so it is given as one.
	hint := ""
	switch {
	case f.BehindNAT.Answer == Yes && f.PortPreserved.Answer == No:
		hint = "; hint: the NAT changed our port, which symmetric NATs do: if peers behind NATs fail to connect, expect to need the relay"
	case f.BehindNAT.Answer == Yes && f.PortPreserved.Answer == Yes:
		hint = "; hint: the NAT kept our port, as endpoint-independent NATs usually do"
	}
	return "the NAT mapping was not measured (" + f.Mapping.Why + "): whether direct punching can work from here is unknown" + hint
}
