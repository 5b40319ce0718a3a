package rendezvous

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/pion/stun/v3"
)

// Owner-proven names.
//
// A protected name is "pk-" followed by the 52-character lowercase,
// unpadded base32 (RFC 4648 alphabet) of SHA-256(ownerPub), ownerPub an
// Ed25519 public key. Only a holder of the matching private key can
// Register or Connect it: the server answers an unproven request with 401
// and a fresh NONCE, and the client repeats the request on the same
// connection with OWNER-PROOF = ownerPub (32 bytes) || Ed25519 signature
// (64 bytes) over
//
//	"tcpunch owner-proof v1" || 0x00 || method (2 bytes, big-endian) || nonce || name
//
// (method 0x0C01 Register or 0x0C02 Connect; the nonce as the server sent
// it, 16 to 32 bytes; the name's ASCII bytes). The layout is unambiguous
// because a protected name always has protectedNameLen bytes. A nonce is
// issued to one connection, is consumed by the first proof checked
// against it, and expires after nonceLifetime, so a captured request
// replayed later, on any connection, proves nothing. Every other name is
// an open name: whoever reaches the server first holds it.

const (
	protectedPrefix  = "pk-"
	protectedNameLen = len(protectedPrefix) + 52 // base32 of 32 bytes, unpadded
	proofContext     = "tcpunch owner-proof v1"
	ownerProofSize   = ed25519.PublicKeySize + ed25519.SignatureSize // 96
	nonceSize        = 16                                            // what this server issues
	minNonceSize     = 16                                            // what a decoder accepts
	maxNonceSize     = 32
	resumeSize       = 16

	// nonceLifetime bounds how long a challenge may be answered: a client
	// signs at once, so this only has to cover a slow link.
	nonceLifetime = 30 * time.Second
	// maxChallenges bounds the challenges per connection, and with them the
	// signature checks (one per nonce, about 50 µs each): past it the
	// server says Goodbye (401) and closes.
	maxChallenges = 3
)

// ownerAttrs are the owner-proof and resume attributes (docs/PROTOCOL.md).
const (
	attrNonce  stun.AttrType = 0x7C06 // NONCE: 16-32 random bytes, in a 401 response
	attrResume stun.AttrType = 0x7C07 // RESUME-TOKEN: 16 random bytes, in a Register success and a re-Register
)

// ErrUnauthorized is matched by the error of [Register] or [Connect] when
// the name is protected and the server refused to let us use it: we had no
// owner key ([WithOwnerKey]) or the server refused our proof (401 or 403).
// A Connect whose proof is refused gets ErrUnknownName instead, the answer
// an unknown name gets: the server never tells a stranger whether a
// protected name is registered.
var ErrUnauthorized = errors.New("rendezvous: unauthorized for this name")

// nameEncoding is RFC 4648 base32 with the lowercase alphabet, no padding.
// IsProtectedName re-encodes what it decodes, so each key has exactly one
// spelling (the 4 bits past the hash must be zero).
var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ProtectedName returns the protected name owned by pub, a 32-byte Ed25519
// public key: "pk-" and the lowercase base32 of SHA-256(pub). It returns
// "" for a key of another size.
func ProtectedName(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		return ""
	}
	h := sha256.Sum256(pub)
	return protectedPrefix + nameEncoding.EncodeToString(h[:])
}

// IsProtectedName reports whether name has the syntax of a protected
// name, whose use needs the owner's key.
func IsProtectedName(name string) bool {
	if len(name) != protectedNameLen || !strings.HasPrefix(name, protectedPrefix) {
		return false
	}
	suffix := name[len(protectedPrefix):]
	var h [sha256.Size + 1]byte
	n, err := nameEncoding.Decode(h[:], []byte(suffix))
	return err == nil && n == sha256.Size && nameEncoding.EncodeToString(h[:n]) == suffix
}

// proofMessage is the byte string an OWNER-PROOF signs.
func proofMessage(method stun.Method, nonce []byte, name string) []byte {
	b := make([]byte, 0, len(proofContext)+1+2+len(nonce)+len(name))
	b = append(b, proofContext...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(method))
	b = append(b, nonce...)
	return append(b, name...)
}

// signOwnerProof builds the OWNER-PROOF value for a request.
func signOwnerProof(priv ed25519.PrivateKey, method stun.Method, nonce []byte, name string) []byte {
	proof := make([]byte, 0, ownerProofSize)
	proof = append(proof, priv.Public().(ed25519.PublicKey)...)
	return append(proof, ed25519.Sign(priv, proofMessage(method, nonce, name))...)
}

// verifyOwnerProof checks that proof's key owns name and that its
// signature covers method, nonce and name.
func verifyOwnerProof(proof []byte, method stun.Method, nonce []byte, name string) bool {
	if len(proof) != ownerProofSize {
		return false
	}
	pub := ed25519.PublicKey(proof[:ed25519.PublicKeySize])
	if subtle.ConstantTimeCompare([]byte(ProtectedName(pub)), []byte(name)) != 1 {
		return false
	}
	return ed25519.Verify(pub, proofMessage(method, nonce, name), proof[ed25519.PublicKeySize:])
}

// ownerAuth is a connection's owner-proof state. The serve goroutine alone
// touches it (requests are handled one at a time), except resume, which
// the registry's mutex guards.
type ownerAuth struct {
	nonce      []byte // the outstanding challenge, nil when none
	issued     time.Time
	challenges int
	// refused marks a Connect whose proof failed: it is then paired like a
	// Connect to an unknown name, so that it gets the very same answer.
	refused bool
	resume  [resumeSize]byte // the token of the name this connection holds
}

// checkOwner decides whether req (a Register or Connect that passed
// checkFirst) may use its name. Open names always may. For a protected
// name without a proof checked against this connection's outstanding
// nonce it answers 401 with a fresh NONCE (after maxChallenges, Goodbye
// and close). A refused proof answers a Register with 403; a Connect
// proceeds with auth.refused set, to end in the unknown-name 404. It
// returns whether the handler goes on.
func (c *peerConn) checkOwner(req *message) bool {
	if !strings.HasPrefix(req.Name, protectedPrefix) {
		return true
	}
	if !IsProtectedName(req.Name) {
		_ = c.send(errorResponse(req, CodeBadRequest, "bad name: a name starting with "+protectedPrefix+" must be followed by 52 lowercase base32 characters (a key's hash)"))
		return false
	}
	a := &c.auth
	if req.OwnerProof != nil && a.nonce != nil && time.Since(a.issued) <= nonceLifetime {
		nonce := a.nonce
		a.nonce = nil // single use, whatever the outcome
		if verifyOwnerProof(req.OwnerProof, req.Type.Method, nonce, req.Name) {
			return true
		}
		c.log.Info("owner proof refused", "method", req.Type.Method.String(), "name", req.Name)
		if req.Type.Method == methodConnect {
			a.refused = true
			return true
		}
		_ = c.send(errorResponse(req, CodeForbidden, "Forbidden: owner proof refused"))
		return false
	}
	if a.challenges >= maxChallenges {
		c.log.Info("closing connection: too many unproven requests", "name", req.Name)
		c.goodbye(CodeUnauthorized, "too many unproven requests")
		c.close()
		return false
	}
	a.challenges++
	a.nonce, a.issued = make([]byte, nonceSize), time.Now()
	_, _ = rand.Read(a.nonce)
	resp := errorResponse(req, CodeUnauthorized, "Unauthorized")
	resp.Nonce = a.nonce
	_ = c.send(resp)
	return false
}

// claimResumable gives name to c as registry.claim does, and also when
// another connection holds it but req presents that holder's resume token:
// that is the same listener reconnecting before the server noticed its old
// connection die. It returns the connection displaced (to be closed), the
// new resume token, and whether c holds the name now.
func (r *registry) claimResumable(req *message, c *peerConn) (old *peerConn, token [resumeSize]byte, ok bool) {
	_, _ = rand.Read(token[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.names[req.Name]
	if cur != nil && cur != c {
		if !req.HasResume || subtle.ConstantTimeCompare(cur.auth.resume[:], req.Resume[:]) != 1 {
			return nil, token, false
		}
		old = cur
	}
	r.names[req.Name] = c
	if cur == nil {
		r.changed(len(r.names))
	}
	c.auth.resume = token
	return old, token, true
}

// encodeOwnerAttrs adds NONCE, OWNER-PROOF and RESUME-TOKEN to m.
func (msg *message) encodeOwnerAttrs(m *stun.Message) {
	if msg.Nonce != nil {
		m.Add(attrNonce, msg.Nonce)
	}
	if msg.OwnerProof != nil {
		m.Add(attrOwnerProof, msg.OwnerProof)
	}
	if msg.HasResume {
		m.Add(attrResume, msg.Resume[:])
	}
}

// decodeOwnerAttr decodes NONCE, OWNER-PROOF or RESUME-TOKEN into msg,
// with exact lengths; a duplicate is an error. It copies: nothing aliases
// the raw message.
func (msg *message) decodeOwnerAttr(a stun.RawAttribute) error {
	switch a.Type {
	case attrNonce:
		if msg.Nonce != nil {
			return errors.New("duplicate NONCE")
		}
		if len(a.Value) < minNonceSize || len(a.Value) > maxNonceSize {
			return errors.New("NONCE must be 16 to 32 bytes")
		}
		msg.Nonce = append([]byte(nil), a.Value...)
	case attrOwnerProof:
		if msg.OwnerProof != nil {
			return errors.New("duplicate OWNER-PROOF")
		}
		if len(a.Value) != ownerProofSize {
			return errors.New("OWNER-PROOF must be 96 bytes")
		}
		msg.OwnerProof = append([]byte(nil), a.Value...)
	case attrResume:
		if msg.HasResume {
			return errors.New("duplicate RESUME-TOKEN")
		}
		if len(a.Value) != resumeSize {
			return errors.New("RESUME-TOKEN must be 16 bytes")
		}
		msg.HasResume = true
		copy(msg.Resume[:], a.Value)
	}
	return nil
}
