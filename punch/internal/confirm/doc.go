// Package confirm adds end-of-stream confirmation to a byte stream, so that
// a side can tell "everything I sent reached the peer's application and the
// peer's stream ended cleanly" from "the peer died, reset or truncated".
// TCP and TLS cannot tell: a write that returned is only in a kernel
// buffer, and a peer killed after the last write looks, from the sender,
// exactly like a peer that read everything.
//
// It runs over the TLS link (punch/internal/seclink) and, unchanged, over
// plain TCP for the --insecure mode. Each side must wrap its end.
//
// # Wire format
//
// A stream of frames, each a 4-byte header, type (1 byte) and payload
// length (3 bytes, big-endian), then the payload:
//
//	DATA 0x00  1..MaxPayload bytes of application data
//	FIN  0x01  8 bytes: how many data bytes this side sent, in total
//	ACK  0x02  8 bytes: how many data bytes this side's application read,
//	           sent once it has read the peer's FIN (its Read returned io.EOF)
//
// Write sends DATA; CloseWrite sends FIN. The underlying half-close (TLS
// close_notify, TCP FIN) goes only once this side has sent its FIN and
// acknowledged the peer's FIN, so an ACK can still flow after a half-close.
// Finish waits for both and reports a Delivery. The overhead is 4 bytes per
// up to 64 KiB of data.
//
// Do not use it for a stream whose peer does not wrap its end too.
package confirm
