package cpace

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"github.com/gtank/ristretto255"
)

// Parameters of CPACE-RISTR255-SHA512.
const (
	// DSI is G_Ristretto255.DSI.
	DSI = "CPaceRistretto255"
	// ShareSize is the size of a public share (an encoded ristretto255
	// element).
	ShareSize = 32
	// ISKSize is the size of the intermediate session key (SHA-512).
	ISKSize = 64

	hashBlockSize = 128 // H.s_in_bytes of SHA-512
	fieldSize     = 32  // G.field_size_bytes
)

// ErrInvalidShare is returned when the peer's share does not decode to a
// group element, or the shared point K is the neutral element. The draft
// requires aborting the run; callers treat it as an authentication failure.
var ErrInvalidShare = errors.New("cpace: invalid peer share")

// Role says which transcript a party builds.
type Role uint8

const (
	// Initiator is party A of the initiator-responder setting.
	Initiator Role = iota + 1
	// Responder is party B of the initiator-responder setting.
	Responder
	// Symmetric is the setting without roles (ordered concatenation of the
	// transcript). Use it only when AD values are unique per session.
	Symmetric
)

func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Party is one side of a single CPace run. It is not safe for concurrent use
// and must not be reused after Finish.
type Party struct {
	role  Role
	sid   []byte
	ad    []byte
	y     *ristretto255.Scalar
	share []byte
	done  bool
}

// New starts a run for role with the password prs, channel identifier ci,
// session identifier sid and associated data ad (sent alongside the share by
// the caller, if the peer does not know it already). It draws the secret
// scalar from crypto/rand.
func New(role Role, prs, ci, sid, ad []byte) (*Party, error) {
	return newParty(role, prs, ci, sid, ad, rand.Reader)
}

func newParty(role Role, prs, ci, sid, ad []byte, rnd io.Reader) (*Party, error) {
	if role != Initiator && role != Responder && role != Symmetric {
		return nil, fmt.Errorf("cpace: unknown role %d", role)
	}
	g := calculateGenerator(prs, ci, sid)
	y, err := sampleScalar(rnd)
	if err != nil {
		return nil, err
	}
	share := ristretto255.NewElement().ScalarMult(y, g).Encode(nil)
	return &Party{
		role:  role,
		sid:   append([]byte(nil), sid...),
		ad:    append([]byte(nil), ad...),
		y:     y,
		share: share,
	}, nil
}

// Share returns this party's public share (Ya or Yb), ShareSize bytes.
func (p *Party) Share() []byte { return append([]byte(nil), p.share...) }

// Finish takes the peer's share and associated data and returns ISK. It
// returns ErrInvalidShare (and no key) for an invalid share or an identity
// result, as the draft requires.
func (p *Party) Finish(peerShare, peerAD []byte) ([]byte, error) {
	if p.done {
		return nil, errors.New("cpace: party already finished")
	}
	p.done = true
	k, ok := scalarMultVfy(p.y, peerShare)
	if !ok {
		return nil, ErrInvalidShare
	}
	var transcript []byte
	switch p.role {
	case Initiator:
		transcript = transcriptIR(p.share, p.ad, peerShare, peerAD)
	case Responder:
		transcript = transcriptIR(peerShare, peerAD, p.share, p.ad)
	default:
		transcript = transcriptOC(p.share, p.ad, peerShare, peerAD)
	}
	return isk(p.sid, k, transcript), nil
}

// calculateGenerator is G.calculate_generator(H, PRS, CI, sid) for
// ristretto255: hash the generator string to 64 bytes and apply the
// element derivation (one-way map) of the abstraction.
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(generatorString([]byte(DSI), prs, ci, sid, hashBlockSize))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// sampleScalar is the draft's recommended G.sample_scalar(): 32 random
// bytes with the bits above group_size_bits (252) cleared, read as a
// little-endian integer. Such a value is always below the group order; the
// zero scalar (probability 2^-252) is redrawn.
func sampleScalar(rnd io.Reader) (*ristretto255.Scalar, error) {
	var b [fieldSize]byte
	for {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("cpace: drawing a scalar: %w", err)
		}
		b[fieldSize-1] &= 0x0f
		s := ristretto255.NewScalar()
		if err := s.Decode(b[:]); err != nil {
			return nil, fmt.Errorf("cpace: decoding a scalar: %w", err)
		}
		if s.Equal(ristretto255.NewScalar()) == 0 {
			return s, nil
		}
	}
}

// identity is G.I, the encoding of the neutral element.
var identity = ristretto255.NewElement().Encode(nil)

// scalarMultVfy is G.scalar_mult_vfy(y, X): decode X, multiply, encode. It
// reports false where the draft returns G.I (X does not decode, or the
// product is the neutral element).
func scalarMultVfy(y *ristretto255.Scalar, x []byte) ([]byte, bool) {
	e := ristretto255.NewElement()
	if err := e.Decode(x); err != nil {
		return nil, false
	}
	k := ristretto255.NewElement().ScalarMult(y, e)
	if k.Equal(ristretto255.NewElement()) == 1 {
		return nil, false
	}
	return k.Encode(nil), true
}

// isk is ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript).
func isk(sid, k, transcript []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(DSI+"_ISK"), sid, k))
	h.Write(transcript)
	return h.Sum(nil)
}
