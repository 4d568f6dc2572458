package upgrade

import (
	"context"
	"net"
	"os"

	"github.com/cloudflare/tableflip"
)

// flipper is the part of *tableflip.Upgrader hawk uses. Tests substitute a fake
// that behaves as tableflip v1.2.3 does (its upgrader.go), without exec.
type flipper interface {
	ListenWithCallback(network, addr string, fn func(network, addr string) (net.Listener, error)) (net.Listener, error)
	ListenPacketWithCallback(network, addr string, fn func(network, addr string) (net.PacketConn, error)) (net.PacketConn, error)
	HasParent() bool
	Ready() error
	Upgrade() error
	Exit() <-chan struct{}
	Stop()
	WaitForParent(ctx context.Context) error
	// Files passed by name (tableflip's Fds): the handoff channel (internal/handoff).
	AddFile(name string, f *os.File) error
	File(name string) (*os.File, error)
}

var _ flipper = (*tableflip.Upgrader)(nil)
