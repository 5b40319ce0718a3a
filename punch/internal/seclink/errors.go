package seclink

import (
	"errors"
	"net"
)

// ErrAuthFailed means the peer does not hold the same secret or code (or
// is not the peer the rendezvous paired us with). Callers branch on it with
// errors.Is: it is the "wrong secret / wrong code" outcome, distinct from a
// network failure.
var ErrAuthFailed = errors.New("peer authentication failed (wrong secret or code?)")

// isBadCertificateAlert reports whether err is the peer's TLS
// bad_certificate alert: the peer refused our certificate, which for two
// tcpunch peers means its K_auth differs from ours. crypto/tls reports a
// received alert as a *net.OpError with Op "remote error".
func isBadCertificateAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil &&
		op.Err.Error() == "tls: bad certificate"
}

// authError wraps a handshake or read error so that errors.Is(err,
// ErrAuthFailed) holds when the cause is a failed authentication.
type authError struct{ err error }

func (e *authError) Error() string {
	return ErrAuthFailed.Error() + ": " + e.err.Error()
}

func (e *authError) Is(target error) bool { return target == ErrAuthFailed }
func (e *authError) Unwrap() error        { return e.err }

func classify(err error) error {
	if err == nil || errors.Is(err, ErrAuthFailed) {
		return err
	}
	if isBadCertificateAlert(err) {
		return &authError{err}
	}
	return err
}
