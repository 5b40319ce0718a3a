// Package cpace implements the CPace balanced password-authenticated key
// exchange with the CPACE-RISTR255-SHA512 cipher suite (group ristretto255,
// hash SHA-512), as specified in draft-irtf-cfrg-cpace-21.
//
// Two parties that share a low-entropy password (PRS), a channel identifier
// (CI) and a session identifier (sid) each send one 32-byte share and derive
// the same 64-byte intermediate session key (ISK). An active attacker who
// does not know the password gets exactly one online guess per run and
// nothing to attack offline; a passive observer learns nothing.
//
// The package is the bare protocol: it does not send anything and does not
// confirm the key. A caller must confirm ISK before trusting the peer (tcpunch
// binds it to a TLS 1.3 session, see punch/internal/seclink) and must treat
// every error as a failed authentication attempt.
//
// Use it when both sides share only a short code. Do not use it for long
// random secrets (derive keys with HKDF instead) and do not use a Party twice.
package cpace
