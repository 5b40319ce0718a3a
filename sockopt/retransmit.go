package sockopt

import (
	"fmt"
	"syscall"
	"time"
)

// ErrNoRetransmitControl is returned by [RetransmitSYN] where the kernel
// cannot cap the retransmission timeout of one socket (Linux before 6.15,
// other operating systems).
// It matches errors.ErrUnsupported.
var ErrNoRetransmitControl error = unsupported("sockopt: per-socket retransmission timeout is not available on this kernel")

// MinRetransmitInterval is the shortest interval [RetransmitSYN] accepts:
// Linux does not cap a socket's retransmission timeout below one second.
const MinRetransmitInterval = time.Second

// RetransmitSYN makes the kernel retransmit the SYN of the connect in
// progress on c every interval (at least [MinRetransmitInterval]) for as
// long as the connect lasts, instead of backing off exponentially and giving
// up after about two minutes of retries. Call it from a dialer's Control
// function; undo it on the established connection with
// [RestoreRetransmit].
//
// A hole puncher needs the kernel's retransmission rather than a fresh
// socket per retry: every retransmitted SYN carries the same initial
// sequence number, while a new socket on the same 4-tuple starts with a new
// one. A Linux NAT that saw one socket's SYN and then the peer's
// (conntrack SYN_SENT2) rejects the next socket's segments as out of window
// for minutes, so a single SYN lost between the host and its NAT would
// otherwise block the path.
func RetransmitSYN(c syscall.RawConn, interval time.Duration) error {
	if interval < MinRetransmitInterval {
		return fmt.Errorf("sockopt: SYN retransmission interval %v is below %v", interval, MinRetransmitInterval)
	}
	return control(c, "capping the SYN retransmission timeout", func(fd uintptr) error {
		return setRetransmit(fd, interval, true)
	})
}

// RestoreRetransmit gives c back the kernel's default retransmission
// timeout cap after [RetransmitSYN].
func RestoreRetransmit(c syscall.RawConn) error {
	return control(c, "restoring the retransmission timeout", func(fd uintptr) error {
		return setRetransmit(fd, 0, false)
	})
}

// RetransmitTimeout is how long the kernel will wait before it resends on
// c's socket next (TCP_INFO's rto): for a connect in progress, when the
// next SYN goes out. Where the kernel does not say, it fails with
// [ErrNoRetransmitControl].
//
// A hole puncher without [RetransmitSYN] uses it to leave an unanswered SYN
// to the kernel for as long as the kernel resends soon enough (Linux 6.7
// and later resend the first four SYNs after one second each, see
// net.ipv4.tcp_syn_linear_timeouts) and to dial afresh only once it backs
// off.
func RetransmitTimeout(c syscall.RawConn) (time.Duration, error) {
	var rto time.Duration
	err := control(c, "reading the retransmission timeout", func(fd uintptr) (err error) {
		rto, err = kernelRTO(fd)
		return err
	})
	return rto, err
}
