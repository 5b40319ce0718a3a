package command

import (
	"strings"
	"testing"

	"github.com/tcpunch/tcpunch/internal/natlab"
)

// The demo's advice names the one thing that stops the lab: the lab needs
// nothing installed, so it never tells the user to install something.
func TestLabAdvice(t *testing.T) {
	for _, c := range []struct {
		st   natlab.Status
		want string
	}{
		{natlab.Status{OS: "linux", MissingOptional: natlab.Tools}, "run it as root"},
		{natlab.Status{OS: "darwin"}, "needs Linux network namespaces; this is darwin"},
	} {
		got := labAdvice(c.st)
		if !strings.Contains(got, c.want) || strings.Contains(got, "apt-get") {
			t.Errorf("labAdvice(%+v) = %q, want it to say %q and nothing about installing", c.st, got, c.want)
		}
	}
}
