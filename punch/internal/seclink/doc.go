// Package seclink turns an already-established connection between two
// tcpunch peers into a mutually authenticated, encrypted TLS 1.3 link, and
// holds the trust material both peers share: a long-lived Secret or a
// one-time Code.
//
// # Roles
//
// The roles come from the rendezvous, never from who dialed (after a TCP
// simultaneous open both sides "dialed"): the controlling peer is the TLS
// client, the controlled peer the TLS server. Both peers also know the
// 16-byte session tag the rendezvous gave them.
//
// # Authentication
//
// Both peers hold the same 32-byte authentication key K_auth:
//
//   - Secret mode: K_auth = HKDF-SHA256(secret, info = "tcpunch/link-auth/secret/v1" 0x00 label).
//   - Code mode: before the TLS records, each side sends one 32-byte CPace
//     share (CPACE-RISTR255-SHA512, see punch/internal/cpace; the controlling
//     side is the initiator, sid is the session tag, CI names the protocol,
//     both roles and the nameplate). K_auth = HKDF-SHA256(ISK, info =
//     "tcpunch/link-auth/code/v1"). Both shares go out at once, the client's
//     in front of its ClientHello, so the PAKE costs no extra round trip.
//
// From K_auth both derive one Ed25519 identity key pair (HKDF info
// "tcpunch/tls-identity/v1"). Each side makes a fresh self-signed Ed25519
// certificate per connection and puts into it a critical extension holding
// the identity key's signature over
//
//	"tcpunch-tls-handshake v1" || role (1 byte) || session tag (16) || the certificate's SubjectPublicKeyInfo (DER)
//
// (the signed-key construction of libp2p's TLS handshake, with one identity
// shared by both peers). A peer accepts the other's certificate only if that
// signature verifies under the identity public key it derived itself, for
// the other role and for this session tag.
//
// Why this is sound: TLS 1.3 makes each side prove possession of its
// certificate's private key with a CertificateVerify signature over the
// transcript of this very handshake, so a certificate cannot be replayed
// into another session. The extension binds that ephemeral key to K_auth,
// which only holders of the secret (or of the code, through CPace) can
// compute. A man in the middle that runs two TLS sessions, one with each
// peer, would need a certificate whose key it holds and whose extension
// verifies, i.e. it would need K_auth. The role byte stops a certificate
// from being reflected back to its sender, the tag binds it to the
// rendezvous session. Session resumption is disabled, so every session
// verifies certificates. With a wrong secret or code the derived identities
// differ, the client refuses the server's certificate and sends a
// bad_certificate alert, so both sides fail the handshake with ErrAuthFailed
// and neither has delivered an application byte.
//
// In code mode an active attacker (or the rendezvous) gets one online guess
// per attempt: CPace gives it nothing to test a password against offline,
// and the certificates travel encrypted under the TLS handshake keys.
//
// # Round trips
//
// From the established TCP connection the client is authenticated and may
// send after one TLS round trip (it pipelines its ClientHello, and in code
// mode its CPace share); the server has verified the client after 1.5 round
// trips, when the client's Certificate, CertificateVerify and Finished
// arrive, before any application data.
//
// # Owner key
//
// OwnerKey derives, from (secret, label), the Ed25519 key whose
// rendezvous.ProtectedName is the name the server sees; the rendezvous
// package signs its challenges (rendezvous.WithOwnerKey). Its HKDF info
// differs from the link's, so owner signatures tell nothing about K_auth.
//
// Handshake works over any net.Conn: punch runs the controlling side's
// over a buffering conn before the punch has picked a connection, so the
// first flight goes out behind the nominating hello.
//
// When not to use it: for anything but a tcpunch peer (it has no CA trust
// and no host names); over a link that already has its own authentication.
package seclink
