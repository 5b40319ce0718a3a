package natlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// Tool is an external program that helps when looking into a running lab.
// The lab itself runs none: it builds everything over netlink.
type Tool struct {
	Name    string // the command, e.g. "nft"
	Package string // the Debian/Ubuntu package that provides it
	Purpose string
}

// Tools are the programs worth having to inspect a lab by hand
// (`ip netns exec NAME nft list ruleset` ...). [Check] reports the missing
// ones in [Status.MissingOptional]; none is required.
var Tools = []Tool{
	{"ip", "iproute2", "ip netns exec NAME ...: a shell or tcpdump inside a namespace"},
	{"nft", "nftables", "reading the routers' NAT and firewall rules"},
	{"conntrack", "conntrack", "inspecting NAT state while debugging"},
}

// Status is what [Check] found.
type Status struct {
	OS              string
	Root            bool
	MissingOptional []Tool // Tools not on PATH; the lab runs without them
}

// Check reports whether this machine can run the lab: Linux and root. It
// also lists which of the optional [Tools] are missing.
func Check() Status {
	s := Status{OS: runtime.GOOS, Root: os.Geteuid() == 0}
	for _, t := range Tools {
		if _, err := exec.LookPath(t.Name); err != nil {
			s.MissingOptional = append(s.MissingOptional, t)
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
	if !s.Root {
		return errors.New("natlab: unavailable: needs root for network namespaces: run as root, e.g. `sudo -E env PATH=$PATH go test ./e2e/...`")
	}
	return nil
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
