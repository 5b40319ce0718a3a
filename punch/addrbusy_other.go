//go:build !unix && !windows

package punch

func isAddrBusy(err error) bool { return false }
