package rendezvous

import "sync/atomic"

// counter is one monotonically increasing server counter.
type counter struct{ n atomic.Uint64 }

func (c *counter) add()         { c.n.Add(1) }
func (c *counter) load() uint64 { return c.n.Load() }

// serverStats are the server's refusal counters; Stats copies them out.
type serverStats struct {
	registerLimited, connectLimited, unknownLimited, nameLimited counter
	connsRefused, writeTimeouts, badConns                        counter
	cancels, refusals, candidatesDropped                         counter
	pairingsAbandoned                                            counter
	dialBackLimited, dialBackBusy                                counter
}

// Stats are counters since the server started: everything it refused or
// cut, for metrics and tests. All are monotonic.
type Stats struct {
	RegisterRateLimited    uint64 // Register answered 429: the source's Register bucket was empty
	ConnectRateLimited     uint64 // Connect answered 429: the source's Connect bucket was empty
	UnknownNameRateLimited uint64 // Connect to an unknown name answered 429 instead of 404
	NameRateLimited        uint64 // Connect answered 429: the name's Connect bucket was empty
	ConnsRefused           uint64 // connections refused by the per-source or total cap (Goodbye 429/508)
	WriteTimeouts          uint64 // connections closed because a write timed out
	BadConns               uint64 // connections closed for malformed input or read timeouts
	Cancels                uint64 // Cancel indications sent to listeners (their dialer left)
	Refusals               uint64 // Refuse indications relayed from listeners to dialers
	CandidatesDropped      uint64 // host candidates the candidate policy withheld
	PairingsAbandoned      uint64 // pairings dropped because the dialer left before its peer info was sent
	DialBackRateLimited    uint64 // DialBack answered 429: the source's dial-back bucket was empty
	DialBackBusy           uint64 // DialBack answered 429: the cap of dial-backs in flight was reached
}

// Stats returns the server's counters. A metrics exporter polls it; the
// fields map one to one onto counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	return Stats{
		RegisterRateLimited:    st.registerLimited.load(),
		ConnectRateLimited:     st.connectLimited.load(),
		UnknownNameRateLimited: st.unknownLimited.load(),
		NameRateLimited:        st.nameLimited.load(),
		ConnsRefused:           st.connsRefused.load(),
		WriteTimeouts:          st.writeTimeouts.load(),
		BadConns:               st.badConns.load(),
		Cancels:                st.cancels.load(),
		Refusals:               st.refusals.load(),
		CandidatesDropped:      st.candidatesDropped.load(),
		PairingsAbandoned:      st.pairingsAbandoned.load(),
		DialBackRateLimited:    st.dialBackLimited.load(),
		DialBackBusy:           st.dialBackBusy.load(),
	}
}
