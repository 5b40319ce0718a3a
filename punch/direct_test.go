package punch

import (
	"testing"

	"github.com/tcpunch/tcpunch/rendezvous"
)

func TestDirectPossible(t *testing.T) {
	sym := rendezvous.NATClass{Mapping: rendezvous.MappingAddressPortDependent}
	symQuick := rendezvous.NATClass{Mapping: rendezvous.MappingEndpointDependent}
	eim := rendezvous.NATClass{Mapping: rendezvous.MappingEndpointIndependent}
	eimDrop := rendezvous.NATClass{Mapping: rendezvous.MappingEndpointIndependent, Filtering: rendezvous.FilteringSilent}
	open := rendezvous.NATClass{Mapping: rendezvous.MappingNone, Filtering: rendezvous.FilteringAccepted}
	for _, c := range []struct {
		name        string
		local, peer rendezvous.NATClass
		want        bool
	}{
		{"symmetric×symmetric", sym, symQuick, false},
		{"symmetric×drop", sym, eimDrop, false},
		{"drop×symmetric", eimDrop, sym, false},
		{"symmetric×unknown filtering", sym, eim, true},
		{"symmetric×open host", sym, open, true},
		{"eim×eim", eim, eimDrop, true},
		{"unmeasured", rendezvous.NATClass{}, rendezvous.NATClass{}, true},
	} {
		ok, why := DirectPossible(c.local, c.peer)
		if ok != c.want || (!ok && why == "") {
			t.Errorf("%s: DirectPossible = %v %q, want %v (and a reason when false)", c.name, ok, why, c.want)
		}
	}
}
