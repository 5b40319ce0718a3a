package e2e_test

import (
	"os"
	"slices"
	"strings"

	"github.com/tcpunch/tcpunch/punch"
)

// secretFile holds the secret every listen and dial of the tests is given
// (TCPUNCH_SECRET_FILE) unless it chooses its own trust.
var secretFile string

func writeSecret(path string) error {
	s, err := punch.GenerateSecret()
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(s.String()+"\n"), 0o600)
}

// ownTrust reports args that choose their trust themselves: --insecure or
// a --secret-file of their own. A process that must have no secret at all
// (a one-time code) gets noSecret in its prefix.
func ownTrust(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--insecure" || a == "-s" || strings.HasPrefix(a, "--secret-file")
	})
}

// noSecret, in a start prefix, clears the secret the helper would give.
var noSecret = []string{"env", "TCPUNCH_SECRET_FILE=", "TCPUNCH_SECRET="}
