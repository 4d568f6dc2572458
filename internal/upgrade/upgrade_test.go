package upgrade

import (
	"errors"
	"sync/atomic"
	"testing"
)

var firstUpgrader atomic.Bool

// Two listeners on the same configured address ("127.0.0.1:0") are two sockets.
// That the handover keeps them apart (keyed by address alone, the second would
// replace the first and the new process would serve the protocol on the admin
// socket) needs a real exec: test/e2e TestAdminSurvivesUpgrade covers it.
func TestListenTwoSocketsOnOneAddress(t *testing.T) {
	// tableflip allows one Upgrader per process, ever (Stop does not free the slot),
	// so under -count=N only the first run can make one.
	if !firstUpgrader.CompareAndSwap(false, true) {
		t.Skip("this test process has made its one Upgrader already (-count > 1)")
	}
	u, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Stop()
	proto, err := u.Listen("protocol", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proto.Close()
	admin, err := u.Listen("admin", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if proto.Addr().String() == admin.Addr().String() {
		t.Fatalf("both listeners on %s", proto.Addr())
	}
	if u.Inherited() {
		t.Fatal("a process started by hand reports an inherited socket set")
	}
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	// Only one Upgrader per process: a second is an error, not a silent second state.
	if _, err := New(Options{}); err == nil {
		t.Fatal("a second upgrader was created")
	}
}

func TestUpgradeRefusedWhileBusyOrDone(t *testing.T) {
	u := &Upgrader{parentGone: make(chan struct{})}
	if err := u.Upgrade(); !errors.Is(err, ErrParentDraining) {
		t.Fatalf("parent draining: %v, want ErrParentDraining", err)
	}
	close(u.parentGone)
	u.busy.Store(true)
	if err := u.Upgrade(); !errors.Is(err, ErrInProgress) {
		t.Fatalf("busy: %v, want ErrInProgress", err)
	}
	u.handed.Store(true)
	if err := u.Upgrade(); !errors.Is(err, ErrUpgraded) {
		t.Fatalf("handed over: %v, want ErrUpgraded", err)
	}
}
