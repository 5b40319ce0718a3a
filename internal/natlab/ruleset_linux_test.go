//go:build linux

package natlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRulesetMatchesNft installs each router kind and compares what the
// kernel holds, as `nft list ruleset` prints it inside the router's
// namespace, with the rules the lab meant to install (the text its errors
// quote). It needs the nft binary, which the lab itself does not: under
// CI=true (make deps installs nftables) a missing nft fails the test.
func TestRulesetMatchesNft(t *testing.T) {
	t.Parallel()
	ctx, l := nftLab(t)
	for _, kind := range []NATKind{NATDrop, NATReject, NATOpen, NATSymmetric, NATSymmetricRandom} {
		r, err := l.AddRouter(ctx, kind.String(), kind)
		if err != nil {
			t.Fatal(err)
		}
		want := rulesetText(natTables(kind))
		out, err := r.Command(ctx, "nft", "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: nft list ruleset: %v: %s", kind, err, out)
		}
		// nft prints an inet rule's `meta nfproto ipv6` before `meta
		// l4proto tcp reject` as an implied dependency and leaves it out,
		// also for rules it loaded itself: compare without it, and compare
		// the bytecode below.
		if got, want := normalizeRuleset(string(out)), normalizeRuleset(strings.ReplaceAll(want, "meta nfproto ipv6 meta l4proto tcp reject", "meta l4proto tcp reject")); got != want {
			t.Errorf("%v: the kernel holds\n%s\nwant\n%s", kind, got, want)
		}
		// The same text loaded by nft itself into a scratch namespace must
		// give the same kernel expressions.
		ref, err := l.AddPublicHost(ctx, "ref-"+kind.String())
		if err != nil {
			t.Fatal(err)
		}
		load := ref.Command(ctx, "nft", "-f", "-")
		load.Stdin = strings.NewReader(want)
		if out, err := load.CombinedOutput(); err != nil {
			t.Fatalf("%v: nft -f of the expected rules: %v: %s\n%s", kind, err, out, want)
		}
		if got, want := bytecode(ctx, t, &r.node), bytecode(ctx, t, &ref.node); got != want {
			t.Errorf("%v: kernel expressions differ from those nft makes of\n%s\ngot\n%s\nwant\n%s", kind, rulesetText(natTables(kind)), got, want)
		}
	}
	// The delay stage's tables, on a router (with its LAN exclusions).
	r, err := l.AddRouter(ctx, "shaped", NATDrop)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetDelay(r, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	out, err := r.Command(ctx, "nft", "list", "table", "ip6", "lablink").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table ip6 lablink: %v: %s", err, out)
	}
	got := normalizeRuleset(string(out))
	for _, want := range []string{
		`iifname "wan" jump link`,
		fmt.Sprintf(`iifname "lan" ip6 daddr %v accept`, r.LAN6()),
		`iifname "lan" jump link`,
		`oifname "wan" jump link`,
		"icmpv6 type nd-neighbor-solicit return",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table ip6 lablink lacks %q:\n%s", want, got)
		}
	}
	// nft prints the xtables target as `xt target "NFQUEUE"`, or, where
	// it has libxtables to translate it, as `queue num 0`.
	if !strings.Contains(got, "NFQUEUE") && !strings.Contains(got, "queue num 0") {
		t.Errorf("table ip6 lablink has no NFQUEUE target:\n%s", got)
	}
}

// bytecode is the kernel's expressions of every rule in n's namespace,
// as `nft --debug=netlink` prints them, without rule handles.
func bytecode(ctx context.Context, t *testing.T, n *node) string {
	t.Helper()
	out, err := n.Command(ctx, "nft", "--debug=netlink", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: nft --debug=netlink list ruleset: %v: %s", n.name, err, out)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "  [") {
			keep = append(keep, line)
		} else if f := strings.Fields(line); len(f) == 4 && !strings.Contains(line, "{") {
			keep = append(keep, strings.Join(f[:3], " ")) // "inet lab input 4": drop the handle
		}
	}
	if len(keep) == 0 {
		t.Fatalf("%s: no rules in:\n%s", n.name, out)
	}
	return strings.Join(keep, "\n")
}

// normalizeRuleset drops indentation and blank lines.
func normalizeRuleset(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestRuleErrorNamesRule checks that a rule the kernel refuses is reported
// with its text, table and chain.
func TestRuleErrorNamesRule(t *testing.T) {
	t.Parallel()
	Require(t)
	l, err := New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ns := l.Rendezvous().ns
	bad := rule(iifname("eth0"), jump("nowhere")) // a jump to a chain that does not exist
	err = installTables(ns, "host rendezvous", []nftTable{{family: natTables(NATDrop)[0].family, name: "t", chains: []nftChain{{name: "c", rules: []nftRule{bad}}}}})
	if err == nil {
		t.Fatal("a jump to a missing chain was accepted")
	}
	want := `natlab: host rendezvous: rule "iifname \"eth0\" jump nowhere" in table inet t chain c: `
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q\ndoes not start with %q", err, want)
	}
}

// TestForwardRulesMatchNft checks a port forward as TestRulesetMatchesNft
// checks the routers: the kernel holds the rules the lab quotes, and they
// are the expressions nft makes of that text.
func TestForwardRulesMatchNft(t *testing.T) {
	t.Parallel()
	ctx, l := nftLab(t)
	r, err := l.AddRouter(ctx, "r", NATReject)
	if err != nil {
		t.Fatal(err)
	}
	to := []netip.AddrPort{netip.AddrPortFrom(hostAddr(r.lan4, 10), 5201), netip.AddrPortFrom(hostAddr(r.lan4, 11), 80)}
	for i, port := range []uint16{5201, 8080} {
		if err := r.ForwardTCP(port, to[i]); err != nil {
			t.Fatal(err)
		}
	}
	tables := natTables(NATReject)
	fwd := &tables[0].chains[1]
	if fwd.name != "forward" {
		t.Fatalf("chain %s, want forward", fwd.name)
	}
	fwd.rules = append([]nftRule{rule(ctStatusDNAT(), accept)}, fwd.rules...)
	tables = append(tables, forwardTable([]nftRule{dnatRule(5201, to[0]), dnatRule(8080, to[1])}))
	want := rulesetText(tables)
	out, err := r.Command(ctx, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	if got, want := normalizeRuleset(string(out)), normalizeRuleset(strings.ReplaceAll(want, "meta nfproto ipv6 meta l4proto tcp reject", "meta l4proto tcp reject")); got != want {
		t.Errorf("the kernel holds\n%s\nwant\n%s", got, want)
	}
	ref, err := l.AddPublicHost(ctx, "ref")
	if err != nil {
		t.Fatal(err)
	}
	load := ref.Command(ctx, "nft", "-f", "-")
	load.Stdin = strings.NewReader(want)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("nft -f of the expected rules: %v: %s\n%s", err, out, want)
	}
	if got, want := bytecode(ctx, t, &r.node), bytecode(ctx, t, &ref.node); got != want {
		t.Errorf("kernel expressions differ from those nft makes of\n%s\ngot\n%s\nwant\n%s", rulesetText(tables), got, want)
	}
}

// nftLab is a fresh lab for a test that compares its rules with what the
// nft binary shows. The lab itself does not need nft: under CI=true (make
// deps installs nftables) a missing nft fails the test, elsewhere it skips.
func nftLab(t *testing.T) (context.Context, *Lab) {
	t.Helper()
	Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nft is not installed (make deps installs nftables); CI=true: failing instead of skipping")
		}
		t.Skip("nft is not installed: apt-get install nftables")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	l, err := New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return ctx, l
}
