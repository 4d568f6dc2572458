package upgrade

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
)

// fakeFlip behaves as tableflip v1.2.3's Upgrader does (upgrader.go), minus exec:
// the same refusals with the same texts, in the same precedence, and Exit closed by
// a successful upgrade or by Stop. A started "child" waits for the test to say how
// it ends, on child.
type fakeFlip struct {
	mu          sync.Mutex
	ready       bool
	parent      bool
	parentAlive bool
	upgrading   bool
	stopped     bool
	exited      bool
	exit        chan struct{}
	stop        chan struct{}
	parentGone  chan struct{}
	parentErr   error
	readyErr    error
	tried       int        // Upgrade calls
	started     int        // children started
	child       chan error // nil: the child is ready; else it failed
	keys        []string   // ListenWithCallback keys, in order
	files       map[string]*os.File
}

func newFake() *fakeFlip {
	return &fakeFlip{exit: make(chan struct{}), stop: make(chan struct{}), parentGone: make(chan struct{}), child: make(chan error)}
}

// withParent makes the fake a process started by an upgrade, its parent draining.
func (f *fakeFlip) withParent() *fakeFlip {
	f.parent, f.parentAlive = true, true
	return f
}

func (f *fakeFlip) parentExited(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parentAlive, f.parentErr = false, err
	close(f.parentGone)
}

func (f *fakeFlip) ListenWithCallback(network, addr string, fn func(network, addr string) (net.Listener, error)) (net.Listener, error) {
	f.mu.Lock()
	f.keys = append(f.keys, addr)
	f.mu.Unlock()
	return fn(network, addr)
}

func (f *fakeFlip) ListenPacketWithCallback(network, addr string, fn func(network, addr string) (net.PacketConn, error)) (net.PacketConn, error) {
	f.mu.Lock()
	f.keys = append(f.keys, addr)
	f.mu.Unlock()
	return fn(network, addr)
}

func (f *fakeFlip) HasParent() bool { return f.parent }

func (f *fakeFlip) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = true
	return f.readyErr
}

func (f *fakeFlip) Upgrade() error {
	f.mu.Lock()
	f.tried++
	switch {
	case f.stopped:
		f.mu.Unlock()
		return errors.New("terminating")
	case f.exited:
		f.mu.Unlock()
		return errors.New("already upgraded")
	case !f.ready:
		f.mu.Unlock()
		return errors.New("process is not ready yet")
	case f.parentAlive:
		f.mu.Unlock()
		return errors.New("parent hasn't exited")
	case f.upgrading:
		f.mu.Unlock()
		return errors.New("upgrade in progress")
	}
	f.upgrading = true
	f.started++
	f.mu.Unlock()

	var err error
	select {
	case err = <-f.child:
	case <-f.stop:
		err = errors.New("terminating")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.upgrading = false
	if err == nil && !f.exited {
		f.exited = true
		close(f.exit)
	}
	return err
}

func (f *fakeFlip) upgradeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tried
}

func (f *fakeFlip) isUpgrading() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upgrading
}

func (f *fakeFlip) Exit() <-chan struct{} { return f.exit }

func (f *fakeFlip) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	close(f.stop)
	if !f.exited {
		f.exited = true
		close(f.exit)
	}
}

func (f *fakeFlip) WaitForParent(ctx context.Context) error {
	if !f.parent {
		return nil
	}
	select {
	case <-f.parentGone:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.parentErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Files passed by name: the fake keeps them for File, as a child would find them.
func (f *fakeFlip) AddFile(name string, file *os.File) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.files == nil {
		f.files = map[string]*os.File{}
	}
	f.files[name] = file
	return nil
}

func (f *fakeFlip) File(name string) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.files[name], nil
}
