//go:build !linux

package natlab

import (
	"context"
	"net/netip"
	"os/exec"
	"time"
)

// New fails: the lab needs Linux network namespaces.
func New(ctx context.Context, opts ...Option) (*Lab, error) { return nil, ErrUnsupported }

// Sweep has nothing to do off Linux.
func Sweep(ctx context.Context) error { return nil }

func (l *Lab) AddRouter(ctx context.Context, name string, kind NATKind) (*Router, error) {
	return nil, ErrUnsupported
}

func (l *Lab) AddRouterBehind(ctx context.Context, name string, kind NATKind, upstream *Router) (*Router, error) {
	return nil, ErrUnsupported
}

func (l *Lab) AddPeer(ctx context.Context, name string, r *Router) (*Host, error) {
	return nil, ErrUnsupported
}

func (l *Lab) AddPublicHost(ctx context.Context, name string) (*Host, error) {
	return nil, ErrUnsupported
}

func (l *Lab) SetDelay(n Node, oneWay time.Duration) error { return ErrUnsupported }
func (l *Lab) SetLoss(n Node, p float64) error             { return ErrUnsupported }
func (l *Lab) SetLink(n Node, p LinkParams) error          { return ErrUnsupported }
func (l *Lab) Close() error                                { return nil }

func (n *node) Do(fn func() error) error { return ErrUnsupported }

func (n *node) AddAddr(a netip.Prefix) error { return ErrUnsupported }

// Capture fails: there is no lab link to capture.
func (n *node) Capture(ctx context.Context, opts ...CaptureOption) (*Capture, error) {
	return nil, ErrUnsupported
}

// Conntrack fails: there is no lab node.
func (n *node) Conntrack() ([]Flow, error) { return nil, ErrUnsupported }

// ForwardTCP fails: there is no lab router.
func (r *Router) ForwardTCP(port uint16, to netip.AddrPort) error { return ErrUnsupported }

// CommandPrefix is the argv prefix of a command that fails: there are no
// namespaces to run in.
func (n *node) CommandPrefix() []string { return []string{"false"} }

// Command returns a command that fails to start with ErrUnsupported.
func (n *node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Err = ErrUnsupported
	return cmd
}

// BlockTo fails: there is no lab router.
func (r *Router) BlockTo(dst netip.Addr) (func() error, error) { return nil, ErrUnsupported }

// BlockToPort fails: there is no lab router.
func (r *Router) BlockToPort(dst netip.AddrPort) (func() error, error) { return nil, ErrUnsupported }
