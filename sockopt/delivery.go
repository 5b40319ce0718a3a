package sockopt

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrNoDeliveryInfo is returned by [Delivery] where the kernel does not
// tell how much of a connection's stream the peer acknowledged.
var ErrNoDeliveryInfo = errors.New("sockopt: delivery counters are not available on this operating system")

// DeliveryInfo is what the kernel knows of a TCP connection's outgoing
// stream.
type DeliveryInfo struct {
	Unacked    int    // bytes written and not yet acknowledged by the peer's TCP (Linux SIOCOUTQ)
	BytesAcked uint64 // bytes the peer's TCP acknowledged since the connection opened (TCP_INFO tcpi_bytes_acked; a FIN counts one)
	Reset      bool   // a reset is pending (read consumes it): what was unacknowledged is lost
}

// Delivery reads c's delivery counters. "Acknowledged" means the peer's
// kernel has the bytes, not that its application read them: only an
// application-level confirmation says that.
func Delivery(c syscall.Conn) (DeliveryInfo, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return DeliveryInfo{}, fmt.Errorf("sockopt: reading delivery counters: %w", err)
	}
	var d DeliveryInfo
	err = control(raw, "reading delivery counters", func(fd uintptr) (err error) {
		d, err = delivery(fd)
		return err
	})
	return d, err
}
