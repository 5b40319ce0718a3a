package punch

import (
	"errors"

	"github.com/tcpunch/tcpunch/rendezvous"
)

// ErrNoDirectPath: the measured NAT classes of the two sides rule a direct
// connection out (see [DirectPossible]); Listen and Dial return it at once
// instead of waiting out the punch timeout. A relay is the way then.
var ErrNoDirectPath = errors.New("punch: no direct path can exist between these NATs")

// DirectPossible tells from the two sides' NAT classes whether a direct
// TCP connection can exist, and if not, why. It says no only when the
// classes prove it: a side whose mapping changes per destination
// (symmetric) sends its SYN from an endpoint nobody was told, so the other
// side must accept unsolicited SYNs; two such sides can never meet, nor can
// one facing a side whose filter is known to refuse them. Anything not
// measured counts as possible.
func DirectPossible(local, peer rendezvous.NATClass) (bool, string) {
	ls, ps := local.Mapping.Symmetric(), peer.Mapping.Symmetric()
	refuses := func(f rendezvous.Filtering) bool {
		return f == rendezvous.FilteringRST || f == rendezvous.FilteringSilent
	}
	switch {
	case ls && ps:
		return false, "both NATs map every destination to a new port (symmetric): neither SYN can reach the endpoint the other side was given"
	case ls && refuses(peer.Filtering):
		return false, "our NAT is symmetric and the peer's NAT refuses connections it did not ask for (" + peer.Filtering.String() + ")"
	case ps && refuses(local.Filtering):
		return false, "the peer's NAT is symmetric and ours refuses connections it did not ask for (" + local.Filtering.String() + ")"
	}
	return true, ""
}
