package seclink

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// extensionOID identifies the signed-key extension. It is only ever seen
// by tcpunch peers. It sits under enterprise number 32473, which RFC 5612
// reserves for examples and documentation; a registered enterprise number
// should replace it before the wire format is frozen. (crypto/x509 parses
// no OID arc above 2^31, which rules out a 2.25 UUID arc.)
var extensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 7100, 1}

const signedKeyPrefix = "tcpunch-tls-handshake v1"

// identity is the Ed25519 key pair both peers derive from K_auth.
type identity struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newIdentity(kAuth []byte) identity {
	priv := ed25519.NewKeyFromSeed(derive(kAuth, infoIdentity))
	return identity{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// signedKeyMessage is what the identity key signs for a certificate.
func signedKeyMessage(role Role, tag SessionTag, spki []byte) []byte {
	msg := make([]byte, 0, len(signedKeyPrefix)+1+len(tag)+len(spki))
	msg = append(msg, signedKeyPrefix...)
	msg = append(msg, byte(role))
	msg = append(msg, tag[:]...)
	return append(msg, spki...)
}

// makeCertificate makes a fresh self-signed Ed25519 certificate for role
// whose extension carries the identity signature over its key.
func makeCertificate(id identity, role Role, tag SessionTag) (*tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sig, err := asn1.Marshal(ed25519.Sign(id.priv, signedKeyMessage(role, tag, spki)))
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tcpunch " + role.String()},
		// Generous validity: peers' clocks need not agree, and the
		// certificate is good for one handshake only anyway.
		NotBefore:       now.Add(-24 * time.Hour),
		NotAfter:        now.Add(24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: extensionOID, Critical: true, Value: sig}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// verifyCertificate checks the peer's certificate chain: exactly one
// Ed25519 certificate whose extension is the identity's signature for the
// peer's role and our session tag. Every failure wraps ErrAuthFailed.
func verifyCertificate(id identity, peerRole Role, tag SessionTag, rawCerts [][]byte) error {
	if len(rawCerts) != 1 {
		return fmt.Errorf("%w: peer sent %d certificates, want 1", ErrAuthFailed, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return fmt.Errorf("%w: peer certificate: %v", ErrAuthFailed, err)
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return fmt.Errorf("%w: peer certificate key is %T, want Ed25519", ErrAuthFailed, cert.PublicKey)
	}
	var sig []byte
	found := 0
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(extensionOID) {
			found++
			if rest, err := asn1.Unmarshal(ext.Value, &sig); err != nil || len(rest) != 0 {
				return fmt.Errorf("%w: malformed signed-key extension", ErrAuthFailed)
			}
		}
	}
	if found != 1 {
		return fmt.Errorf("%w: peer certificate has %d signed-key extensions, want 1", ErrAuthFailed, found)
	}
	if !ed25519.Verify(id.pub, signedKeyMessage(peerRole, tag, cert.RawSubjectPublicKeyInfo), sig) {
		return fmt.Errorf("%w: peer's key is not signed by the shared identity for role %v and this session", ErrAuthFailed, peerRole)
	}
	return nil
}
