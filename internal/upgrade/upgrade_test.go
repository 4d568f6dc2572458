package upgrade

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var firstUpgrader atomic.Bool

// Two listeners on the same configured address ("127.0.0.1:0") are two sockets, and
// the real tableflip's refusals before Ready and after Stop map to hawk's errors.
// That the handover keeps the two sockets apart (keyed by address alone, the second
// would replace the first and the new process would serve the protocol on the admin
// socket) needs a real exec: test/e2e TestAdminSurvivesUpgrade covers it.
func TestRealTableflip(t *testing.T) {
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
	if err := u.Upgrade(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Upgrade before Ready: %v, want ErrNotReady (has tableflip's text changed?)", err)
	}
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := u.WaitForParent(context.Background()); err != nil {
		t.Fatalf("no parent, yet WaitForParent: %v", err)
	}
	// Only one Upgrader per process: a second is an error, not a silent second state.
	if _, err := New(Options{}); err == nil {
		t.Fatal("a second upgrader was created")
	}
	u.Stop()
	select {
	case <-u.Exit():
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not close Exit")
	}
	for range 5 { // tableflip picks "terminating" or "already upgraded" at random
		if err := u.Upgrade(); !errors.Is(err, ErrStopped) {
			t.Fatalf("Upgrade after Stop: %v, want ErrStopped (has tableflip's text changed?)", err)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeFlip)
		want  error
	}{
		{"before Ready", func(f *fakeFlip) {}, ErrNotReady},
		{"parent still draining", func(f *fakeFlip) { f.withParent(); f.Ready() }, ErrParentDraining},
		{"after Stop", func(f *fakeFlip) { f.Ready(); f.Stop() }, ErrStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			tc.setup(f)
			u := newUpgrader(f)
			if f.stopped {
				u.stopped.Store(true) // as Upgrader.Stop does
			}
			err := u.Upgrade()
			if !errors.Is(err, tc.want) || !IsRefusal(err) {
				t.Fatalf("Upgrade: %v, want the refusal %v", err, tc.want)
			}
			if f.started != 0 {
				t.Fatal("a refused upgrade started a child")
			}
		})
	}
}

// upgrading starts an upgrade whose child the test then ends through f.child.
func upgrading(t *testing.T, u *Upgrader, f *fakeFlip) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- u.Upgrade() }()
	deadline := time.Now().Add(5 * time.Second)
	for !f.isUpgrading() {
		if time.Now().After(deadline) {
			t.Fatal("the upgrade did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return done
}

func TestSecondUpgradeRefusedAtOnce(t *testing.T) {
	f := newFake()
	f.Ready()
	u := newUpgrader(f)
	done := upgrading(t, u, f)
	if err := u.Upgrade(); !errors.Is(err, ErrInProgress) {
		t.Fatalf("second Upgrade: %v, want ErrInProgress", err)
	}
	f.child <- nil
	if err := <-done; err != nil {
		t.Fatalf("first Upgrade: %v", err)
	}
	select {
	case <-u.Exit():
	default:
		t.Fatal("Exit is open after a successful upgrade")
	}
	if err := u.Upgrade(); !errors.Is(err, ErrUpgraded) {
		t.Fatalf("Upgrade after handing over: %v, want ErrUpgraded", err)
	}
	if f.started != 1 {
		t.Fatalf("%d children started, want 1", f.started)
	}
}

func TestFailedUpgradeKeepsServing(t *testing.T) {
	f := newFake()
	f.Ready()
	u := newUpgrader(f)
	done := upgrading(t, u, f)
	f.child <- errors.New("child 1234 exited: exit status 1")
	err := <-done
	if err == nil || IsRefusal(err) || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("failed upgrade: %v, want a failure naming the cause", err)
	}
	select {
	case <-u.Exit():
		t.Fatal("Exit closed after a failed upgrade")
	default:
	}
	// The next SIGHUP tries again.
	done = upgrading(t, u, f)
	f.child <- nil
	if err := <-done; err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestStopInterruptsUpgrade(t *testing.T) {
	f := newFake()
	f.Ready()
	u := newUpgrader(f)
	done := upgrading(t, u, f)
	u.Stop()
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Fatalf("interrupted Upgrade: %v, want ErrStopped", err)
	}
	u.Stop() // twice is fine
}

func TestParentDrainingThenUpgrade(t *testing.T) {
	f := newFake().withParent()
	f.Ready()
	u := newUpgrader(f)
	if !u.Inherited() {
		t.Fatal("Inherited is false in a process with a parent")
	}
	if err := u.Upgrade(); !errors.Is(err, ErrParentDraining) {
		t.Fatalf("%v, want ErrParentDraining", err)
	}
	f.parentExited(errors.New("exit status 2"))
	if err := u.WaitForParent(context.Background()); err == nil || !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("WaitForParent: %v, want the parent's exit status", err)
	}
	done := upgrading(t, u, f)
	f.child <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A SIGHUP that arrives as the parent exits, before tableflip has noticed, is an
// upgrade, not a refusal (e2e: TestFiveUpgradesBackToBack sends each SIGHUP as soon
// as the previous process has exited).
func TestUpgradeAsParentExits(t *testing.T) {
	f := newFake().withParent()
	f.Ready()
	u := newUpgrader(f)
	done := make(chan error, 1)
	go func() { done <- u.Upgrade() }()
	time.Sleep(parentExitGrace / 5)
	f.parentExited(nil)
	childStartsAndIsReady(t, f, done)
}

// childStartsAndIsReady waits for the Upgrade that reports on done to start its
// child, makes the child ready, and checks that Upgrade succeeded.
func childStartsAndIsReady(t *testing.T, f *fakeFlip, done <-chan error) {
	t.Helper()
	for !f.isUpgrading() {
		select {
		case err := <-done:
			t.Fatalf("Upgrade returned %v before the child was started", err)
		case <-time.After(time.Millisecond):
		}
	}
	f.child <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// While one Upgrade waits for the parent to exit, another is refused at once: it
// must not wait too and then race the first to start the child (the first may
// hold what the child is given, such as the handoff channel).
func TestSecondUpgradeRefusedWhileFirstWaitsForParent(t *testing.T) {
	f := newFake().withParent()
	f.Ready()
	u := newUpgrader(f)
	done := make(chan error, 1)
	go func() { done <- u.Upgrade() }()
	for deadline := time.Now().Add(5 * time.Second); f.upgradeCalls() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first Upgrade did not reach tableflip")
		}
	}
	start := time.Now()
	if err := u.Upgrade(); !errors.Is(err, ErrInProgress) {
		t.Fatalf("second Upgrade: %v, want ErrInProgress", err)
	}
	if took := time.Since(start); took >= parentExitGrace/2 {
		t.Fatalf("second Upgrade refused after %v: it waited for the parent", took)
	}
	f.parentExited(nil)
	childStartsAndIsReady(t, f, done)
	if f.started != 1 {
		t.Fatalf("%d children started, want 1", f.started)
	}
}

func TestReadyErrorWrapped(t *testing.T) {
	f := newFake()
	f.readyErr = errors.New("tableflip: can't write PID file: permission denied")
	err := newUpgrader(f).Ready()
	if err == nil || !strings.HasPrefix(err.Error(), "upgrade: ready: ") || !errors.Is(err, f.readyErr) {
		t.Fatalf("Ready: %v", err)
	}
}

func TestListenKeyedByNameAndAddress(t *testing.T) {
	f := newFake()
	u := newUpgrader(f)
	for _, name := range []string{"protocol", "admin"} {
		ln, err := u.Listen(name, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
	}
	if len(f.keys) != 2 || f.keys[0] != "protocol@127.0.0.1:0" || f.keys[1] != "admin@127.0.0.1:0" {
		t.Fatalf("keys %q", f.keys)
	}
	if _, err := u.Listen("admin", "256.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "upgrade: listen admin on 256.0.0.1:0") {
		t.Fatalf("bad address: %v", err)
	}
}

// Every text tableflip refuses with maps to a refusal; anything else is a failure.
func TestUpgradeErrorMapping(t *testing.T) {
	for text, want := range map[string]error{
		tfInProgress:  ErrInProgress,
		tfParentAlive: ErrParentDraining,
		tfNotReady:    ErrNotReady,
		tfUpgraded:    ErrUpgraded,
		tfTerminating: ErrUpgraded, // only Stop closes stopC; without Stop it cannot happen
	} {
		if got := upgradeError(errors.New(text), false); got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
		if text == tfUpgraded || text == tfTerminating {
			if got := upgradeError(errors.New(text), true); got != ErrStopped {
				t.Errorf("%q after Stop: %v, want ErrStopped", text, got)
			}
		}
	}
	if err := upgradeError(errors.New("can't start child: no such file"), false); IsRefusal(err) || err.Error() != "upgrade: can't start child: no such file" {
		t.Errorf("failure: %v", err)
	}
}
