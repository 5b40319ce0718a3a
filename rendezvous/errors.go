package rendezvous

import (
	"errors"
	"fmt"
)

// Error codes carried in ERROR-CODE attributes (docs/PROTOCOL.md lists
// them). 400 and 420 mean what RFC 8489 says; the others are tcpunch's.
const (
	CodeBadRequest       = 400 // malformed or invalid request, unknown method
	CodeUnauthorized     = 401 // Register, Connect: a protected name needs an owner proof; carries NONCE
	CodeForbidden        = 403 // Register: the owner proof was refused; Relay: a token unknown, expired, in use, used up or from another address than its holder's
	CodeIdleTimeout      = 408 // Goodbye: the connection was idle too long
	CodeRelayTimeout     = 408 // Relay: the other peer's leg did not arrive in time
	CodeUnknownName      = 404 // Connect: no listener holds the name
	CodeNameTaken        = 409 // Register: another listener holds the name
	CodeUnknownAttribute = 420 // unknown comprehension-required attribute (RFC 8489)
	CodeTooManyConns     = 429 // Goodbye: too many connections from the source IP
	CodeTooManyRequests  = 429 // Register, Connect: the source's or the name's rate limit (ratelimit.go)
	CodeListenerBusy     = 503 // Refuse: the listener is at its cap of concurrent punches
	CodeServerError      = 500 // the server failed
	CodeShuttingDown     = 503 // Goodbye: the server is shutting down
	CodeCapacity         = 508 // Goodbye: the server is at its connection limit
)

var (
	// ErrNameTaken is returned by [Register] when another listener holds
	// the name. The name frees when that listener's connection goes away.
	ErrNameTaken = errors.New("rendezvous: name taken")
	// ErrUnknownName is returned by [Connect] when no listener holds the name.
	ErrUnknownName = errors.New("rendezvous: unknown name")
	// ErrServerClosed is returned by [Server.Serve] and
	// [Server.ListenAndServe] after [Server.Shutdown] or [Server.Close].
	ErrServerClosed = errors.New("rendezvous: server closed")
	// ErrInvalidOption is matched by the error of [Server.Serve],
	// [Server.ListenAndServe], [Register], [Connect] and [MappedAddress]
	// when an option was given a value that means nothing (the package
	// doc's table lists what each option accepts). The error names the
	// option and the value.
	ErrInvalidOption = errors.New("rendezvous: invalid option")
)

// ServerError is an error response (or a Goodbye) from the server: its
// ERROR-CODE. errors.Is(err, ErrNameTaken), errors.Is(err,
// ErrUnknownName) and errors.Is(err, ErrUnauthorized) hold for the
// matching codes.
type ServerError struct {
	Code   int
	Reason string

	nonce []byte // a 401's NONCE: the challenge to sign
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("rendezvous: server error %d: %s", e.Code, e.Reason)
}

// Is lets callers branch on sentinels without knowing codes.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrNameTaken:
		return e.Code == CodeNameTaken
	case ErrUnknownName:
		return e.Code == CodeUnknownName
	case ErrUnauthorized:
		return e.Code == CodeUnauthorized || e.Code == CodeForbidden
	}
	return false
}
