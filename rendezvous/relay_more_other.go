//go:build !linux

package rendezvous

import "net"

// writeHeaderMore writes a frame header; elsewhere than Linux it goes in a
// segment of its own (no MSG_MORE).
func writeHeaderMore(tc *net.TCPConn, hdr []byte) error {
	_, err := tc.Write(hdr)
	return err
}
