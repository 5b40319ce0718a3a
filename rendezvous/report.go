package rendezvous

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// Punch outcome reports (docs/PROTOCOL.md, "PunchReport"): after a punch a
// client may tell the server, over its control connection, how it went.
// The server counts reports (Tracer.PunchReported) and nothing else: they
// are the operator's success rate.

// methodReport is the PunchReport indication (client → server).
const methodReport stun.Method = 0xC30

// The report's attributes. Comprehension-required: a server that does not
// know them drops the indication (RFC 8489 §6.3), which is what an old
// server does with it anyway.
const (
	attrPunchPath     stun.AttrType = 0x7C30 // 1 byte: 1 direct, 2 relay, 3 failed
	attrPunchMethod   stun.AttrType = 0x7C31 // 1 byte: 0 none, 1 simultaneous-open, 2 accept, 3 connect
	attrPunchTime     stun.AttrType = 0x7C32 // uint32: time to connect (or to give up), µs
	attrPunchAttempts stun.AttrType = 0x7C33 // uint16: SYNs sent, all candidates together
	attrNATClasses    stun.AttrType = 0x7C34 // 2 bytes: the reporter's NAT class, then the peer's
)

const (
	// maxReportSize bounds a report, header included: a valid one is 80
	// bytes (88 with FINGERPRINT). A bigger one is ignored.
	maxReportSize = 256
	// maxReportTags is how many unreported sessions a connection may
	// report on; beyond it the oldest are forgotten. A listener paired
	// with many dialers at once is the only one to have more than one.
	maxReportTags = 16
)

func isReportAttr(t stun.AttrType) bool {
	return t >= attrPunchPath && t <= attrNATClasses
}

// Wire values of the report's enums. Decoding maps any other value onto the
// fixed sets (PunchOther, a NAT class not measured); a path the server does
// not know makes the report meaningless, so it is ignored.
var (
	pathWire   = []PunchPath{1: PathDirect, 2: PathRelay, 3: PathFailed}
	methodWire = []PunchMethod{0: PunchNone, 1: PunchSimultaneousOpen, 2: PunchAccept, 3: PunchConnect}
)

// A report carries a NAT class coarsely, by its mapping alone: 0 not
// measured, 1 none, 2 endpoint-independent, 3 symmetric (any mapping that
// changes with the destination). That is what the success rate is broken
// down by; the full class travels in NAT-CLASS.
func natToWire(c NATClass) byte {
	switch {
	case c.Mapping == MappingNone:
		return 1
	case c.Mapping == MappingEndpointIndependent:
		return 2
	case c.Mapping.Symmetric():
		return 3
	}
	return 0
}

// natFromWire is the class a report's byte stands for; symmetric reads as
// endpoint-dependent (address and address-and-port dependence not told
// apart), anything unknown as not measured.
func natFromWire(b byte) NATClass {
	switch b {
	case 1:
		return NATClass{Mapping: MappingNone}
	case 2:
		return NATClass{Mapping: MappingEndpointIndependent}
	case 3:
		return NATClass{Mapping: MappingEndpointDependent}
	}
	return NATClass{}
}

// wireOf is v's wire value, fallback for a value outside the table.
func wireOf[T comparable](table []T, v T, fallback byte) byte {
	for i, x := range table {
		if x == v {
			return byte(i)
		}
	}
	return fallback
}

func fromWire[T any](table []T, b byte, other T) T {
	if int(b) < len(table) {
		return table[b]
	}
	return other
}

// wireReport is a PunchReport on the wire, as decoded.
type wireReport struct {
	r    PunchReport
	seen uint8 // report attributes seen while decoding, bit (type - attrPunchPath)
	bad  bool  // malformed, repeated, without a path or too large: the report is ignored
}

// finish ends decoding a report carried by a message of size bytes: what
// makes it unusable is folded into bad, and a bad report keeps nothing
// else, so that decoding, encoding and decoding again means the same.
func (w *wireReport) finish(size int) {
	if w.bad || w.seen&1 == 0 || size > maxReportSize {
		*w = wireReport{bad: true}
	}
	w.seen = 0
}

func (w *wireReport) encode(m *stun.Message) {
	if w.bad {
		// Path 0 is no path: the receiver ignores the report, as this
		// side would have.
		m.Add(attrPunchPath, []byte{0})
		return
	}
	r := w.r
	m.Add(attrPunchPath, []byte{wireOf(pathWire, r.Path, 0)}) // 0: no path; the server ignores the report
	m.Add(attrPunchMethod, []byte{wireOf(methodWire, r.Method, 0xFF)})
	m.Add(attrPunchTime, binary.BigEndian.AppendUint32(nil, durMicros(r.TimeToConnect)))
	m.Add(attrPunchAttempts, binary.BigEndian.AppendUint16(nil, uint16(min(max(r.Attempts, 0), 0xFFFF))))
	m.Add(attrNATClasses, []byte{natToWire(r.LocalNAT), natToWire(r.PeerNAT)})
}

// decodeReportAttr decodes one report attribute into msg.Report. It never
// fails the message: a bad report is ignored by the server, the connection
// lives on.
func (msg *message) decodeReportAttr(t stun.AttrType, v []byte) {
	if msg.Report == nil {
		msg.Report = &wireReport{r: PunchReport{Method: PunchNone}}
	}
	w := msg.Report
	bit := uint8(1) << (t - attrPunchPath)
	if w.seen&bit != 0 {
		w.bad = true
		return
	}
	w.seen |= bit
	switch t {
	case attrPunchPath:
		if len(v) != 1 || v[0] == 0 || int(v[0]) >= len(pathWire) {
			w.bad = true
			return
		}
		w.r.Path = pathWire[v[0]]
	case attrPunchMethod:
		if len(v) != 1 {
			w.bad = true
			return
		}
		w.r.Method = fromWire(methodWire, v[0], PunchOther)
	case attrPunchTime:
		if len(v) != 4 {
			w.bad = true
			return
		}
		w.r.TimeToConnect = time.Duration(binary.BigEndian.Uint32(v)) * time.Microsecond
	case attrPunchAttempts:
		if len(v) != 2 {
			w.bad = true
			return
		}
		w.r.Attempts = int(binary.BigEndian.Uint16(v))
	case attrNATClasses:
		if len(v) != 2 {
			w.bad = true
			return
		}
		w.r.LocalNAT = natFromWire(v[0])
		w.r.PeerNAT = natFromWire(v[1])
	}
}

// ---- server side ----

// reportState is what a connection may still report on: the sessions the
// server paired it in, each good for one report.
type reportState struct {
	mu   sync.Mutex
	tags [][tagSize]byte // oldest first
}

func (st *reportState) expect(tag [tagSize]byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.tags) >= maxReportTags {
		st.tags = append(st.tags[:0], st.tags[1:]...)
	}
	st.tags = append(st.tags, tag)
}

// take consumes tag, reporting whether it was expected.
func (st *reportState) take(tag [tagSize]byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, t := range st.tags {
		if t == tag {
			st.tags = append(st.tags[:i], st.tags[i+1:]...)
			return true
		}
	}
	return false
}

// expectReports lets each of conns report once on the session tag.
func expectReports(tag [tagSize]byte, conns ...*peerConn) {
	for _, c := range conns {
		c.reports.expect(tag)
	}
}

// punchReported handles a PunchReport indication: checked, bounded to one
// per session the server paired this connection in, then counted. Anything
// wrong with it is ignored (logged at debug); the connection is unaffected.
func (c *peerConn) punchReported(msg *message, unknown []stun.AttrType) {
	w := msg.Report
	var why string
	switch {
	case w == nil || w.bad:
		why = fmt.Sprintf("malformed, without a path, or over %d bytes", maxReportSize)
	case len(unknown) > 0:
		why = fmt.Sprintf("unknown comprehension-required attributes %v", unknown)
	case !msg.HasTag:
		why = "no session tag"
	case !c.reports.take(msg.Tag):
		why = "not a session of this connection, or already reported"
	default:
		c.s.cfg.tracer.PunchReported(w.r)
		return
	}
	c.log.Debug("punch report ignored", "why", why)
}

// ---- client side ----

// Reporter sends punch outcome reports to the server over a control
// connection. A *Registration is one, and so is the io.Closer [Connect]
// returns (for the dialer: report before closing it).
type Reporter interface {
	// Report tells the server how the punch of session tag (the
	// PeerInfo's Tag) went. It only writes: the server does not answer,
	// and ignores a report on a session it did not pair this connection
	// in, or a second one on the same session. ctx bounds the write.
	Report(ctx context.Context, tag [16]byte, r PunchReport) error
}

var (
	_ Reporter = (*Registration)(nil)
	_ Reporter = (*controlConn)(nil)
)

func reportMessage(tag [16]byte, r PunchReport) *message {
	return &message{
		Type: stun.NewType(methodReport, stun.ClassIndication), TxID: newTxID(),
		Tag: tag, HasTag: true, Report: &wireReport{r: r},
	}
}

// Report implements [Reporter] for the dialer's control connection.
func (c *controlConn) Report(ctx context.Context, tag [16]byte, r PunchReport) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rendezvous: reporting a punch: %w", err)
	}
	deadline := time.Now().Add(c.cfg.requestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.sendBy(reportMessage(tag, r), deadline); err != nil {
		return fmt.Errorf("rendezvous: reporting a punch: %w", err)
	}
	return nil
}

// Report implements [Reporter] over the registration's current control
// connection. A report of a session paired on a connection since lost
// (the registration reconnected) is ignored by the server.
func (r *Registration) Report(ctx context.Context, tag [16]byte, rep PunchReport) error {
	r.mu.Lock()
	c := r.cur
	r.mu.Unlock()
	if c == nil || r.ctx.Err() != nil {
		return fmt.Errorf("rendezvous: reporting a punch of %q: %w", r.name, net.ErrClosed)
	}
	return c.Report(ctx, tag, rep)
}
