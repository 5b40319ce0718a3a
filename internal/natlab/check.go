package natlab

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Tool is an external program that helps when looking into a running lab.
// The lab itself runs none: it builds everything over netlink.
type Tool struct {
	Name     string // the command, e.g. "nft"
	Package  string // the Debian/Ubuntu package that provides it
	Purpose  string
	Required bool // always false: no tool is needed to run the lab
}

// Tools are the programs worth having to inspect a lab by hand
// (`ip netns exec NAME nft list ruleset` ...). [Check] reports the missing
// ones in [Status.MissingOptional]; none is required.
var Tools = []Tool{
	{"ip", "iproute2", "ip netns exec NAME ...: a shell or tcpdump inside a namespace", false},
	{"nft", "nftables", "reading the routers' NAT and firewall rules", false},
	{"conntrack", "conntrack", "inspecting NAT state while debugging", false},
}

// Status is what [Check] found.
type Status struct {
	OS              string
	Root            bool
	Missing         []Tool // required tools not on PATH
	MissingOptional []Tool
}

// Check reports whether this machine can run the lab: Linux and root. It
// also lists which of the optional [Tools] are missing.
func Check() Status {
	s := Status{OS: runtime.GOOS, Root: os.Geteuid() == 0}
	for _, t := range Tools {
		if _, err := exec.LookPath(t.Name); err != nil {
			if t.Required {
				s.Missing = append(s.Missing, t)
			} else {
				s.MissingOptional = append(s.MissingOptional, t)
			}
		}
	}
	return s
}

// Err is nil when the lab can run, otherwise an error that says exactly
// what to do about it.
func (s Status) Err() error {
	if s.OS != "linux" {
		return fmt.Errorf("%w (this is %s)", ErrUnsupported, s.OS)
	}
	var what []string
	if !s.Root {
		what = append(what, "needs root for network namespaces: run as root, e.g. `sudo -E env PATH=$PATH go test ./e2e/...`")
	}
	if len(s.Missing) > 0 {
		var names []string
		for _, t := range s.Missing {
			names = append(names, t.Name)
		}
		what = append(what, fmt.Sprintf("missing %s: install with `apt-get install %s` (or `make deps` as root)",
			strings.Join(names, ", "), strings.Join(packages(s.Missing), " ")))
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("natlab: unavailable: %s", strings.Join(what, "; "))
}

func packages(ts []Tool) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range ts {
		if !seen[t.Package] {
			seen[t.Package] = true
			out = append(out, t.Package)
		}
	}
	return out
}

// TB is the part of testing.TB that [Require] uses, so this package does
// not import testing into the tcpunch binary.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Require skips the test when the lab cannot run here, saying what to do.
// Under CI=true the same condition fails the test instead: CI must
// exercise the lab, not skip it silently.
func Require(t TB) {
	t.Helper()
	if err := Check().Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(fmt.Sprintf("%v (CI=true: the lab must run in CI, so this fails instead of skipping)", err))
		}
		t.Skip(err)
	}
}
