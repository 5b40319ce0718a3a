package seclink

import "crypto/ed25519"

// Owner key: how a holder of a Secret proves to the rendezvous server that
// it may Register or Connect the name of (secret, label), without the
// server learning the secret or the label. Both listener and dialer derive
//
//	seed = HKDF-SHA256(secret, salt = none, info = "tcpunch/owner/v1" 0x00 label, 32 bytes)
//	key  = the Ed25519 key pair of seed (RFC 8032)
//
// The name on the server, the challenge and the signed bytes are the
// rendezvous package's (rendezvous.ProtectedName, rendezvous.WithOwnerKey,
// docs/PROTOCOL.md): this package only derives the key. The owner key is
// separate from the link identity (another HKDF info), so the server, which
// sees owner signatures, learns nothing about the link's authentication.

// OwnerKey derives the owner's Ed25519 private key for (secret, label).
func OwnerKey(s Secret, label string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(derive(s.b[:], infoOwner+label))
}
