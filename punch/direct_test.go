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

// TestNeedsPeerClassMirrorsDirectPossible: the server pairs without
// waiting for a dialer's class when the listener's says it cannot matter
// (rendezvous.NATClass.NeedsPeerClass); that is safe only if, for such a
// class, DirectPossible says yes whatever the other side's class, and it
// must wait whenever some peer class would say no.
func TestNeedsPeerClassMirrorsDirectPossible(t *testing.T) {
	var all []rendezvous.NATClass
	for m := rendezvous.MappingNotMeasured; m <= rendezvous.MappingEndpointDependent; m++ {
		for f := rendezvous.FilteringNotMeasured; f <= rendezvous.FilteringSilent; f++ {
			all = append(all, rendezvous.NATClass{Mapping: m, Filtering: f})
		}
	}
	for _, l := range all {
		someNo := false
		for _, d := range all {
			ok1, _ := DirectPossible(l, d)
			ok2, _ := DirectPossible(d, l)
			if ok1 != ok2 {
				t.Errorf("DirectPossible not symmetric for %v / %v", l, d)
			}
			someNo = someNo || !ok1
		}
		if someNo != l.NeedsPeerClass() {
			t.Errorf("%v: NeedsPeerClass %v, but some peer class rules the path out: %v", l, l.NeedsPeerClass(), someNo)
		}
	}
}
