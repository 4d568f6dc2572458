// Package upgrade is the only place hawk opens listening sockets, so that every one
// of them can be handed to a new binary on SIGHUP (cloudflare/tableflip).
//
// The contract, in order:
//  1. New once per process (tableflip allows one Upgrader).
//  2. Listen for every socket the process will serve, before Ready: sockets
//     inherited from a parent and not claimed by then are closed at Ready.
//  3. Ready once everything the process needs is open: only then does the parent
//     learn the upgrade succeeded, and the PID file names this process.
//  4. Upgrade execs os.Args[0] with the same arguments and blocks until the child is
//     Ready (nil) or failed (the error says why; this process keeps serving).
//  5. After a successful Upgrade, Exit is closed. The caller must close its
//     listeners itself (tableflip only closes its duplicates), drain, and exit:
//     the child refuses its own upgrades until this process has exited.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/cloudflare/tableflip"
)

// Options configures the upgrader.
type Options struct {
	PIDFile string
	// Timeout is how long a new binary has to become ready before it is killed and
	// the upgrade fails. It is fixed for the life of the process (tableflip takes it
	// once), so a change applies from the next process on.
	Timeout time.Duration
}

// ErrInProgress is returned by Upgrade while another upgrade or the drain after a
// successful one is running.
var ErrInProgress = errors.New("upgrade: an upgrade is already in progress")

// ErrParentDraining is returned by Upgrade in a process started by an upgrade
// while the process it replaced is still draining: tableflip allows one
// generation change at a time.
var ErrParentDraining = errors.New("upgrade: the previous process is still draining; try again once it has exited")

// ErrUpgraded is returned by Upgrade once this process has handed over.
var ErrUpgraded = errors.New("upgrade: this process has already been replaced and is draining")

// Upgrader wraps tableflip with hawk's rules.
type Upgrader struct {
	tf         *tableflip.Upgrader
	busy       atomic.Bool
	handed     atomic.Bool
	parentGone chan struct{} // closed once the replaced process has exited (at once if none)
	parentErr  error         // how it exited; read after parentGone is closed
}

// New creates the process's upgrader.
func New(o Options) (*Upgrader, error) {
	tf, err := tableflip.New(tableflip.Options{PIDFile: o.PIDFile, UpgradeTimeout: o.Timeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	u := &Upgrader{tf: tf, parentGone: make(chan struct{})}
	if !tf.HasParent() {
		close(u.parentGone)
	} else {
		go func() {
			u.parentErr = tf.WaitForParent(context.Background())
			close(u.parentGone)
		}()
	}
	return u, nil
}

// Listen returns the TCP listener called name on addr: the one inherited from the
// parent process if it had the same name and address, else a new one.
//
// tableflip keys sockets by their address string alone, so two listeners on
// "127.0.0.1:0" would overwrite each other and the new process would inherit the
// admin socket as its protocol socket. The key here is name and address together.
func (u *Upgrader) Listen(name, addr string) (net.Listener, error) {
	ln, err := u.tf.ListenWithCallback("tcp", name+"@"+addr, func(network, _ string) (net.Listener, error) {
		return net.Listen(network, addr)
	})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen %s on %s: %w", name, addr, err)
	}
	return ln, nil
}

// Inherited reports whether this process was started by an upgrade.
func (u *Upgrader) Inherited() bool { return u.tf.HasParent() }

// Ready tells the parent (if any) that this process serves now, and writes the PID file.
func (u *Upgrader) Ready() error {
	if err := u.tf.Ready(); err != nil {
		return fmt.Errorf("upgrade: ready: %w", err)
	}
	return nil
}

// WaitForParent blocks until the process this one replaced has exited, and says
// whether it ended cleanly.
func (u *Upgrader) WaitForParent(ctx context.Context) error {
	select {
	case <-u.parentGone:
		return u.parentErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Upgrade starts the new binary and waits until it is ready or has failed. It
// refuses at once, with ErrInProgress or ErrUpgraded, rather than queue behind a
// running upgrade: a second SIGHUP must never crash or stack up.
func (u *Upgrader) Upgrade() error {
	if u.handed.Load() {
		return ErrUpgraded
	}
	select {
	case <-u.parentGone:
	default:
		return ErrParentDraining
	}
	if !u.busy.CompareAndSwap(false, true) {
		return ErrInProgress
	}
	defer u.busy.Store(false)
	if err := u.tf.Upgrade(); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	u.handed.Store(true)
	return nil
}

// Exit is closed when this process has been replaced (or Stop was called).
func (u *Upgrader) Exit() <-chan struct{} { return u.tf.Exit() }

// Stop refuses any further upgrade; call it when shutting down for good.
func (u *Upgrader) Stop() { u.tf.Stop() }
