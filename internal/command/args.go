package command

import "strings"

// FlagKinds says, for each flag name of one subcommand (without dashes,
// long names and aliases alike), whether it takes a value (true) or is a
// boolean (false).
type FlagKinds map[string]bool

// PermuteArgs moves the flags of a subcommand's arguments in front of its
// operands, so that `dial laptop -r rv:3478` reads like `dial -r rv:3478
// laptop`, as ssh, nc and curl allow. (The flag parser the CLI uses stops at
// the first operand.) args are the arguments after the subcommand's name.
//
// A flag that takes a value keeps the argument after it as its value, even
// one that starts with a dash (`--exec 'tar -cz /srv'`, `--port -1`), unless
// the value is given inline (`--exec=...`). After `--`, everything is an
// operand. A lone `-` is an operand (stdin, by convention). A flag not in
// kinds is kept in place among the flags, for the parser to reject. The
// result ends with `--` and the operands when there are any, so an operand
// is never read as a flag.
func PermuteArgs(args []string, kinds FlagKinds) []string {
	var flags, operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case a == "-" || !strings.HasPrefix(a, "-"):
			operands = append(operands, a)
		default:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue // the value is inline
			}
			if kinds[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	if len(operands) == 0 {
		return flags
	}
	return append(append(flags, "--"), operands...)
}
