package seclink

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
)

// Owner proof: how a holder of a Secret proves to the rendezvous server
// that it may Register or Connect the name derived from (secret, label),
// without the server learning the secret or the label.
//
// Derivation (both listener and dialer compute the same):
//
//	seed  = HKDF-SHA256(secret, salt = none, info = "tcpunch/owner/v1" 0x00 label, 32 bytes)
//	key   = Ed25519 key pair from seed (RFC 8032)
//	name  = "s-" || lower-case unpadded base32(SHA-256(public key))[:32]
//
// The name has 34 characters from [a-z2-7-], within the server's name rule
// (1-64 of A-Z a-z 0-9 . _ -), and carries 160 bits of the key hash.
//
// Proof: the server sends a fresh random nonce (at least 16 bytes); the
// client answers with its 32-byte public key and a 64-byte Ed25519
// signature over the message
//
//	"tcpunch-owner-proof v1" (22 bytes, no terminator)
//	|| purpose length (1 byte) || purpose ("register" or "connect")
//	|| name length (1 byte)    || name
//	|| nonce length (2 bytes, big-endian) || nonce
//
// The server accepts when (1) the name equals "s-" || base32(SHA-256(pub))[:32]
// as above, (2) ed25519.Verify(pub, message, signature) holds, and (3) the
// nonce is the one it issued on this connection and has not been used
// before. VerifyOwnerProof is the reference implementation; the rendezvous
// package carries its own copy of these few lines (it may not import punch).

const (
	// OwnerNamePrefix starts every secret-derived name.
	OwnerNamePrefix = "s-"
	ownerHashChars  = 32
	ownerProofTag   = "tcpunch-owner-proof v1"

	// PurposeRegister and PurposeConnect are the purposes of an owner proof.
	PurposeRegister = "register"
	PurposeConnect  = "connect"
)

// Owner is the key pair and rendezvous name derived from (secret, label).
type Owner struct {
	// Name is what the rendezvous server sees instead of the label.
	Name string
	priv ed25519.PrivateKey
}

// OwnerKey derives the owner key pair and name for (secret, label).
func OwnerKey(s Secret, label string) *Owner {
	priv := ed25519.NewKeyFromSeed(derive(s.b[:], infoOwner+label))
	pub := priv.Public().(ed25519.PublicKey)
	return &Owner{Name: OwnerName(pub), priv: priv}
}

// OwnerName is the rendezvous name for an owner public key.
func OwnerName(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return OwnerNamePrefix + strings.ToLower(b32.EncodeToString(h[:]))[:ownerHashChars]
}

// PublicKey returns the owner's 32-byte public key, sent with every proof.
func (o *Owner) PublicKey() ed25519.PublicKey { return o.priv.Public().(ed25519.PublicKey) }

// Sign answers the server's challenge nonce for purpose (PurposeRegister or
// PurposeConnect) with a 64-byte signature.
func (o *Owner) Sign(purpose string, nonce []byte) ([]byte, error) {
	msg, err := OwnerProofMessage(purpose, o.Name, nonce)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(o.priv, msg), nil
}

// OwnerProofMessage builds the signed message laid out in the comment above.
func OwnerProofMessage(purpose, name string, nonce []byte) ([]byte, error) {
	if len(purpose) > 255 || len(name) > 255 || len(nonce) > 65535 {
		return nil, errors.New("owner proof: purpose, name or nonce too long")
	}
	msg := make([]byte, 0, len(ownerProofTag)+4+len(purpose)+len(name)+len(nonce))
	msg = append(msg, ownerProofTag...)
	msg = append(msg, byte(len(purpose)))
	msg = append(msg, purpose...)
	msg = append(msg, byte(len(name)))
	msg = append(msg, name...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(nonce)))
	return append(msg, nonce...), nil
}

// VerifyOwnerProof is the server's check (without the nonce bookkeeping):
// the name belongs to pub and sig signs the challenge for purpose.
func VerifyOwnerProof(name, purpose string, pub, nonce, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if OwnerName(pub) != name {
		return false
	}
	msg, err := OwnerProofMessage(purpose, name, nonce)
	return err == nil && ed25519.Verify(pub, msg, sig)
}
