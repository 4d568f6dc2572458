package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
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

// Upgrader is tableflip with hawk's rules (see the package documentation).
type Upgrader struct {
	tf flipper
	// stopped is set by Stop, before tableflip's Stop, so that the refusal an
	// interrupted or later Upgrade gets reads as ErrStopped.
	stopped atomic.Bool
	// running is held by one Upgrade at a time. tableflip refuses a second upgrade
	// only while a child starts: calls made while another waits out parentExitGrace
	// would wait with it, then race it to start the child.
	running sync.Mutex
}

// New creates the process's upgrader.
func New(o Options) (*Upgrader, error) {
	tf, err := tableflip.New(tableflip.Options{PIDFile: o.PIDFile, UpgradeTimeout: o.Timeout})
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	return newUpgrader(tf), nil
}

func newUpgrader(tf flipper) *Upgrader { return &Upgrader{tf: tf} }

// Listen returns the TCP listener called name on addr: the one inherited from the
// parent process if it had the same name and address, else a new one.
//
// tableflip keys sockets by their address string alone, so two listeners on
// "127.0.0.1:0" would overwrite each other and the new process would inherit the
// admin socket as its protocol socket. The key here is name and address together.
func (u *Upgrader) Listen(name, addr string) (net.Listener, error) {
	ln, err := u.tf.ListenWithCallback("tcp", listenKey(name, addr), func(network, _ string) (net.Listener, error) {
		return net.Listen(network, addr)
	})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen %s on %s: %w", name, addr, err)
	}
	return ln, nil
}

func listenKey(name, addr string) string { return name + "@" + addr }

// Inherited reports whether this process was started by an upgrade.
func (u *Upgrader) Inherited() bool { return u.tf.HasParent() }

// Ready tells the parent (if any) that this process serves now, and writes the PID file.
func (u *Upgrader) Ready() error {
	if err := u.tf.Ready(); err != nil {
		return fmt.Errorf("upgrade: ready: %w", err)
	}
	return nil
}

// WaitForParent blocks until the process this one replaced has exited (at once if
// there was none), and says whether it ended cleanly.
func (u *Upgrader) WaitForParent(ctx context.Context) error {
	if err := u.tf.WaitForParent(ctx); err != nil {
		return fmt.Errorf("upgrade: previous process: %w", err)
	}
	return nil
}

// Upgrade starts the new binary and waits until it is ready or has failed. A
// refusal (IsRefusal) comes at once, or within parentExitGrace for
// ErrParentDraining: a second SIGHUP must never crash or stack up.
func (u *Upgrader) Upgrade() error {
	if !u.running.TryLock() {
		return upgradeError(errors.New(tfInProgress), u.stopped.Load())
	}
	defer u.running.Unlock()
	err := u.tf.Upgrade()
	if err != nil && err.Error() == tfParentAlive {
		err = u.upgradeOnceParentGone(err)
	}
	return upgradeError(err, u.stopped.Load())
}

// parentExitGrace is how long Upgrade waits for a parent tableflip still counts as
// alive. The parent's exit reaches this process as the end of a pipe, read by one
// tableflip goroutine and handed to another: for a moment after the old process
// has exited (and longer after it logged "exiting", which docs/OPERATIONS.md tells
// operators to wait for), tableflip still refuses. A SIGHUP sent then is the
// right SIGHUP at the right time, and must not be refused; one sent while the
// parent still drains is refused after this grace.
const parentExitGrace = 500 * time.Millisecond

// upgradeOnceParentGone waits up to parentExitGrace for the parent to exit, then
// upgrades as soon as tableflip has noticed it; refused is tableflip's refusal.
func (u *Upgrader) upgradeOnceParentGone(refused error) error {
	ctx, cancel := context.WithTimeout(context.Background(), parentExitGrace)
	defer cancel()
	if err := u.tf.WaitForParent(ctx); errors.Is(err, context.DeadlineExceeded) {
		return refused // still draining
	}
	err := refused
	for err != nil && err.Error() == tfParentAlive && ctx.Err() == nil {
		if err = u.tf.Upgrade(); err != nil && err.Error() == tfParentAlive {
			time.Sleep(time.Millisecond)
		}
	}
	return err
}

// PassFile makes f (duplicated; the caller may close it) a file the next Upgrade's
// new process finds by name with InheritedFile (contract step 7). The handoff
// channel travels this way.
func (u *Upgrader) PassFile(name string, f *os.File) error {
	if err := u.tf.AddFile(name, f); err != nil {
		return fmt.Errorf("upgrade: pass file %s: %w", name, err)
	}
	return nil
}

// InheritedFile returns the file the parent passed as name, or nil. Call it before
// Ready: tableflip closes inherited files nobody claimed by then.
func (u *Upgrader) InheritedFile(name string) (*os.File, error) {
	f, err := u.tf.File(name)
	if err != nil {
		return nil, fmt.Errorf("upgrade: inherited file %s: %w", name, err)
	}
	return f, nil
}

// Exit is closed when this process has been replaced, and by Stop.
func (u *Upgrader) Exit() <-chan struct{} { return u.tf.Exit() }

// Stop kills an upgrade still starting and refuses any further one; call it when
// shutting down for good. Later calls do nothing.
func (u *Upgrader) Stop() {
	u.stopped.Store(true)
	u.tf.Stop()
}
