//go:build !unix

package command

// IgnoreSIGPIPE does nothing where there is no SIGPIPE.
func IgnoreSIGPIPE() {}
