package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// Trust is how listen and dial authenticate the peer: --secret-file or
// TCPUNCH_SECRET, a one-time code, or --insecure.
type Trust struct {
	SecretFile string // --secret-file: a file holding the secret
	Secret     string // TCPUNCH_SECRET: the secret itself
	Insecure   bool   // --insecure: plaintext, no authentication
}

// trust is the resolved choice for one command.
type trust struct {
	mode   string // punch.AuthSecret, punch.AuthCode or punch.AuthInsecure
	secret punch.Secret
	code   punch.Code
	label  string // what the user called the peer (NAME, or the code)
}

func (t trust) option() punch.Option {
	switch t.mode {
	case punch.AuthSecret:
		return punch.WithSecret(t.secret)
	case punch.AuthCode:
		return punch.WithCode(t.code)
	}
	return punch.WithInsecure()
}

// name is what Listen and Dial are given: the label, or "" for a code
// (whose nameplate punch derives).
func (t trust) name() string {
	if t.mode == punch.AuthCode {
		return ""
	}
	return t.label
}

// codeShape is how a one-time code starts: the nameplate number and a word.
var codeShape = regexp.MustCompile(`^[0-9]+-[A-Za-z]`)

// Secret prints a new secret for --secret-file / TCPUNCH_SECRET.
func Secret(w io.Writer) error {
	s, err := punch.GenerateSecret()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, s.String())
	return err
}

// loadSecret returns the secret from --secret-file or TCPUNCH_SECRET, or
// the zero Secret when neither is given.
func (t Trust) loadSecret() (punch.Secret, bool, error) {
	text, from := t.Secret, "TCPUNCH_SECRET"
	if t.SecretFile != "" {
		b, err := os.ReadFile(t.SecretFile)
		if err != nil {
			return punch.Secret{}, false, usageError("--secret-file: %v", err)
		}
		text, from = string(b), "--secret-file "+t.SecretFile
	}
	if strings.TrimSpace(text) == "" {
		if t.SecretFile != "" {
			return punch.Secret{}, false, usageError("--secret-file %s is empty (make a secret with `tcpunch secret > %s`)", t.SecretFile, t.SecretFile)
		}
		return punch.Secret{}, false, nil
	}
	s, err := punch.ParseSecret(text)
	if err != nil {
		return punch.Secret{}, false, usageError("%s: %v (make one with `tcpunch secret`)", from, err)
	}
	return s, true, nil
}

const addTrust = "add --secret-file FILE or TCPUNCH_SECRET (the same secret on both sides; make one with `tcpunch secret`)"

// resolve picks the trust for listen (listening) or dial with the operand
// name ("" when none was given).
func (t Trust) resolve(name string, listening bool) (trust, error) {
	secret, haveSecret, err := t.loadSecret()
	if err != nil {
		return trust{}, err
	}
	switch {
	case haveSecret && t.Insecure:
		return trust{}, usageError("--insecure and a secret exclude each other")
	case haveSecret:
		if name == "" {
			return trust{}, usageError("missing NAME: with a secret, NAME is the label both sides give")
		}
		return trust{mode: punch.AuthSecret, secret: secret, label: name}, nil
	case t.Insecure:
		if name == "" {
			return trust{}, usageError("missing NAME: the name the listener registers and the dialer asks for")
		}
		return trust{mode: punch.AuthInsecure, label: name}, nil
	case listening && name == "":
		code, err := punch.GenerateCode()
		if err != nil {
			return trust{}, err
		}
		return trust{mode: punch.AuthCode, code: code, label: code.String()}, nil
	case !listening && codeShape.MatchString(name):
		code, err := punch.ParseCode(name)
		if err != nil {
			return trust{}, usageError("%v", err)
		}
		return trust{mode: punch.AuthCode, code: code, label: code.String()}, nil
	case name == "":
		return trust{}, usageError("missing NAME or CODE: the one-time code `tcpunch listen` printed, or NAME with a secret")
	case listening:
		return trust{}, usageError("listen %s needs a secret: %s; or drop NAME for a one-time code, or give --insecure for plaintext anyone can read", name, addTrust)
	}
	return trust{}, usageError("dial %s needs a secret: %s; or give the one-time code `tcpunch listen` printed, or --insecure for plaintext", name, addTrust)
}

// warnInsecure is the line --insecure prints.
func warnInsecure(w io.Writer) {
	fmt.Fprintln(w, "tcpunch: warning: --insecure: no authentication and no encryption: anyone who knows the name can connect, and the rendezvous server or anyone on the path can read and change the data")
}

// explainAuth turns an authentication failure into its one line (exit
// ExitAuth).
func explainAuth(t trust, err error) error {
	var msg string
	switch {
	case errors.Is(err, punch.ErrCodeRetired):
		msg = fmt.Sprintf("one-time code retired: %v", rootCause(err))
		if strings.Contains(err.Error(), "failed attempts") {
			msg = fmt.Sprintf("one-time code retired after 3 failed attempts (a wrong code, or someone guessing it): run `tcpunch listen` again for a new code")
		}
	case t.mode == punch.AuthCode:
		msg = "authentication failed: the peer does not hold this code (a typo, or someone guessed the nameplate); nothing was sent or received"
	default:
		msg = "authentication failed: the peer does not hold the same secret for this NAME (or someone in the middle tried to take the connection); nothing was sent or received"
	}
	return &Error{Code: ExitAuth, Err: &oneLine{msg: msg, err: err}}
}

// explainSecretUnknown is the dialer's line when the server knows no
// listener for the name derived from (secret, NAME).
func explainSecretUnknown(server, name string, err error) error {
	return &Error{Code: ExitRendezvous, Err: &oneLine{msg: fmt.Sprintf(
		"no listener for %q with this secret at %s: nobody listens as %q, or its secret differs (the server sees only a name derived from both)",
		name, server, name), err: err}}
}

// isAuthErr reports the errors explainAuth explains.
func isAuthErr(err error) bool {
	return errors.Is(err, punch.ErrAuthFailed) || errors.Is(err, punch.ErrCodeRetired)
}

// secretUnknown reports a dialer's unknown-name answer in secret mode.
func secretUnknown(t trust, err error) bool {
	return t.mode == punch.AuthSecret && errors.Is(err, rendezvous.ErrUnknownName)
}

// demoSecret writes a fresh secret to a private temporary file for the
// demo's two peers.
func demoSecret() (string, error) {
	s, err := punch.GenerateSecret()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "tcpunch-demo-secret-")
	if err != nil {
		return "", fmt.Errorf("writing the demo's secret: %w", err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, s.String()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing the demo's secret: %w", err)
	}
	return f.Name(), nil
}
