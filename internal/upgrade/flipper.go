package upgrade

import (
	"context"
	"net"

	"github.com/cloudflare/tableflip"
)

// flipper is the part of *tableflip.Upgrader hawk uses. Tests substitute a fake
// that behaves as tableflip v1.2.3 does (its upgrader.go), without exec.
type flipper interface {
	ListenWithCallback(network, addr string, fn func(network, addr string) (net.Listener, error)) (net.Listener, error)
	HasParent() bool
	Ready() error
	Upgrade() error
	Exit() <-chan struct{}
	Stop()
	WaitForParent(ctx context.Context) error
}

var _ flipper = (*tableflip.Upgrader)(nil)
