package seclink

import (
	"encoding/binary"

	"github.com/tcpunch/tcpunch/punch/internal/cpace"
)

// Auth is the trust both peers share: a Secret with a label, or a one-time
// Code. The zero Auth is invalid.
type Auth struct {
	method string
	kAuth  []byte // secret mode: known up front
	code   Code   // code mode: K_auth comes out of CPace
}

// SecretAuth authenticates with a long-lived secret. label is the name the
// user typed (the listener's NAME): peers with different labels do not
// authenticate each other, even with the same secret.
func SecretAuth(s Secret, label string) Auth {
	return Auth{method: MethodSecret, kAuth: derive(s.b[:], infoLinkSecret+label)}
}

// CodeAuth authenticates with a one-time code through CPace.
func CodeAuth(c Code) Auth { return Auth{method: MethodCode, code: c} }

// The authentication methods, as reported by Conn.Method.
const (
	MethodSecret = "secret"
	MethodCode   = "code"
)

// Method says how a link is authenticated: MethodSecret or MethodCode.
func (a Auth) Method() string { return a.method }

// cpaceCI is the CPace channel identifier: the protocol and both roles
// (initiator first, as the draft advises), and the nameplate, each
// length-prefixed so no two inputs share an encoding.
func cpaceCI(c Code) []byte {
	var ci []byte
	for _, s := range []string{"tcpunch-code v1", RoleControlling.String(), RoleControlled.String()} {
		ci = append(ci, byte(len(s)))
		ci = append(ci, s...)
	}
	return binary.BigEndian.AppendUint32(ci, c.nameplate)
}

// newCPace starts this side's CPace run: the controlling peer is the
// initiator, sid is the session tag. The roles are in CI and fixed by the
// rendezvous, so AD is empty and not sent.
func newCPace(c Code, role Role, tag SessionTag) (*cpace.Party, error) {
	r := cpace.Responder
	if role == RoleControlling {
		r = cpace.Initiator
	}
	return cpace.New(r, c.password(), cpaceCI(c), tag[:], nil)
}

func codeKAuth(isk []byte) []byte { return derive(isk, infoLinkCode) }
