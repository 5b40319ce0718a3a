//go:build !unix

package relay

// CloseInheritedOnExec does nothing where handles are not inherited by
// default (Windows) or descriptors cannot be listed.
func CloseInheritedOnExec() error { return nil }
