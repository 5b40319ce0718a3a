package seclink

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// SecretSize is the number of random bytes in a Secret (256 bits).
const SecretSize = 32

const (
	secretPrefix   = "tps1-"
	secretCheckLen = 4 // bytes of checksum: a typo is caught with probability 1-2^-32
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrBadSecret is returned by ParseSecret for text that is not a secret
// made by GenerateSecret (wrong prefix, bad characters, wrong length, or a
// checksum mismatch from a typo).
var ErrBadSecret = errors.New("not a valid tcpunch secret")

// Secret is a long-lived shared secret: 32 random bytes. Its text form is
// "tps1-" followed by the lower-case, unpadded base32 of the 32 bytes and a
// 4-byte checksum (the first bytes of SHA-256("tcpunch secret checksum v1"
// || secret)), 63 characters in all.
type Secret struct{ b [SecretSize]byte }

// GenerateSecret returns a new random secret.
func GenerateSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s.b[:]); err != nil {
		return Secret{}, fmt.Errorf("generating a secret: %w", err)
	}
	return s, nil
}

func secretChecksum(b []byte) []byte {
	h := sha256.Sum256(append([]byte("tcpunch secret checksum v1"), b...))
	return h[:secretCheckLen]
}

// String returns the copy-pasteable text form.
func (s Secret) String() string {
	raw := append(s.b[:], secretChecksum(s.b[:])...)
	return secretPrefix + strings.ToLower(b32.EncodeToString(raw))
}

// ParseSecret reads the text form. Surrounding white space and upper case
// are accepted (a secret read from a file ends with a newline).
func ParseSecret(text string) (Secret, error) {
	t := strings.ToLower(strings.TrimSpace(text))
	if !strings.HasPrefix(t, secretPrefix) {
		return Secret{}, fmt.Errorf("%w: it must start with %q", ErrBadSecret, secretPrefix)
	}
	body := strings.ToUpper(t[len(secretPrefix):])
	raw, err := b32.DecodeString(body)
	// The last character carries bits beyond the bytes: base32 ignores
	// them, so a typo there would be accepted. Only the one canonical
	// spelling is.
	if err != nil || len(raw) != SecretSize+secretCheckLen || b32.EncodeToString(raw) != body {
		return Secret{}, fmt.Errorf("%w: wrong length or characters", ErrBadSecret)
	}
	if subtle.ConstantTimeCompare(raw[SecretSize:], secretChecksum(raw[:SecretSize])) != 1 {
		return Secret{}, fmt.Errorf("%w: checksum mismatch (a typo?)", ErrBadSecret)
	}
	var s Secret
	copy(s.b[:], raw)
	return s, nil
}

// IsZero reports whether s is the zero value (no secret).
func (s Secret) IsZero() bool { return s == Secret{} }

// derive is HKDF-SHA256 of the secret with the given info, no salt (the
// secret is already uniformly random).
func derive(ikm []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, ikm, nil, info, 32)
	if err != nil {
		// Only possible for an output length hkdf cannot produce.
		panic("seclink: hkdf: " + err.Error())
	}
	return k
}

// Domain-separated HKDF info strings. Each derived key has its own; the
// label follows a 0x00 after the fixed prefix, so it is unambiguous.
const (
	infoLinkSecret = "tcpunch/link-auth/secret/v1\x00"
	infoLinkCode   = "tcpunch/link-auth/code/v1"
	infoIdentity   = "tcpunch/tls-identity/v1"
	infoOwner      = "tcpunch/owner/v1\x00"
)
