package command

import (
	"slices"
	"testing"
)

func TestPermuteArgs(t *testing.T) {
	kinds := FlagKinds{"rendezvous": true, "r": true, "report": true, "exec": true, "port": true, "p": true,
		"verbose": false, "v": false}
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"-r", "rv:3478", "laptop"}, []string{"-r", "rv:3478", "--", "laptop"}},
		{[]string{"laptop", "-r", "rv:3478", "--report", "json"}, []string{"-r", "rv:3478", "--report", "json", "--", "laptop"}},
		{[]string{"-v", "laptop", "-r=rv:3478"}, []string{"-v", "-r=rv:3478", "--", "laptop"}},
		// A value that starts with a dash stays the flag's value.
		{[]string{"laptop", "--exec", "tar -cz /srv"}, []string{"--exec", "tar -cz /srv", "--", "laptop"}},
		{[]string{"laptop", "--exec", "-x"}, []string{"--exec", "-x", "--", "laptop"}},
		{[]string{"--exec=tar -cz /srv", "laptop"}, []string{"--exec=tar -cz /srv", "--", "laptop"}},
		{[]string{"--port", "-1", "laptop"}, []string{"--port", "-1", "--", "laptop"}},
		// After --, everything is an operand.
		{[]string{"-r", "rv:1", "--", "-laptop", "-v"}, []string{"-r", "rv:1", "--", "-laptop", "-v"}},
		{[]string{"laptop", "--", "--report"}, []string{"--", "laptop", "--report"}},
		{[]string{"-", "-v"}, []string{"-v", "--", "-"}},
		// Unknown flags stay among the flags for the parser to reject.
		{[]string{"laptop", "--bogus", "x"}, []string{"--bogus", "--", "laptop", "x"}},
		{[]string{"-v"}, []string{"-v"}},
		{nil, nil},
		// A value flag at the very end has no value: the parser says so.
		{[]string{"laptop", "-r"}, []string{"-r", "--", "laptop"}},
	} {
		if got := PermuteArgs(tc.in, kinds); !slices.Equal(got, tc.want) {
			t.Errorf("PermuteArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
