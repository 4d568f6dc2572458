package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// waitWaiters waits until n callers are parked in w's wait, or fails the test.
func waitWaiters(t *testing.T, w *window, n int32) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return w.waiters.Load() == n }, "%d callers waiting for a slot", n)
}

// fill takes every slot of w.
func fill(t *testing.T, w *window) {
	t.Helper()
	for i := int64(0); i < w.size; i++ {
		if err := w.acquire(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWindowWaitsWhileFullUntilRelease(t *testing.T) {
	w := newWindow(3)
	fill(t, w)
	if got := w.inFlight(); got != 3 {
		t.Fatalf("inFlight = %d, want 3", got)
	}
	got := make(chan error, 1)
	go func() { got <- w.acquire(context.Background(), nil) }()
	waitWaiters(t, w, 1)
	select {
	case err := <-got:
		t.Fatalf("acquire on a full window returned %v", err)
	default:
	}
	w.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := w.inFlight(); n != 3 {
		t.Fatalf("inFlight = %d, want 3", n)
	}
}

func TestWindowWaitEndsOnContext(t *testing.T) {
	w := newWindow(1)
	fill(t, w)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- w.acquire(ctx, nil) }()
	waitWaiters(t, w, 1)
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	if n := w.inFlight(); n != 1 {
		t.Fatalf("inFlight = %d, want 1", n)
	}
	if n := w.waiters.Load(); n != 0 {
		t.Fatalf("waiters = %d after the wait ended", n)
	}
}

func TestWindowWaitEndsOnClose(t *testing.T) {
	w := newWindow(1)
	fill(t, w)
	closing := make(chan struct{})
	got := make(chan error, 1)
	go func() { got <- w.acquire(context.Background(), closing) }()
	waitWaiters(t, w, 1)
	close(closing)
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire = %v, want ErrClosed", err)
	}
	if n := w.inFlight(); n != 1 {
		t.Fatalf("inFlight = %d, want 1", n)
	}
}

// A slot taken under an ended context is given back: the caller no longer waits
// for the report, and the slot must not be lost.
func TestWindowGivesBackSlotWhenContextEnded(t *testing.T) {
	w := newWindow(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.acquire(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	if n := w.inFlight(); n != 0 {
		t.Fatalf("inFlight = %d, want 0", n)
	}
	fill(t, w) // both slots still there
}

// The slot given back under an ended context wakes a waiter like any release.
func TestWindowGivenBackSlotWakesWaiter(t *testing.T) {
	w := newWindow(1)
	fill(t, w)
	got := make(chan error, 1)
	go func() { got <- w.acquire(context.Background(), nil) }()
	waitWaiters(t, w, 1)
	// The holder's release and the ended caller's taking and giving back race;
	// the waiter must end up with the slot either way.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.release()
	_ = w.acquire(ctx, nil)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := w.inFlight(); n != 1 {
		t.Fatalf("inFlight = %d, want 1", n)
	}
}

// Several slots freed at once while several callers wait: every free slot is
// taken, none left while a waiter sleeps (one wake token at a time is passed on).
func TestWindowReleasesWakeAllWaiters(t *testing.T) {
	const size, waiting = 4, 4
	w := newWindow(size)
	fill(t, w)
	var wg sync.WaitGroup
	for range waiting {
		wg.Go(func() {
			if err := w.acquire(context.Background(), nil); err != nil {
				t.Error(err)
			}
		})
	}
	waitWaiters(t, w, waiting)
	for range waiting {
		w.release()
	}
	wg.Wait()
	if n := w.inFlight(); n != size {
		t.Fatalf("inFlight = %d, want %d", n, size)
	}
}

// Many callers cycling through a small window never hold more than its size and
// all finish: no wakeup is lost between a release and a caller going to sleep.
func TestWindowNeverOverfillsUnderContention(t *testing.T) {
	const size, callers, rounds = 3, 16, 2000
	w := newWindow(size)
	var held, most atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range rounds {
				if err := w.acquire(context.Background(), nil); err != nil {
					t.Error(err)
					return
				}
				n := held.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				held.Add(-1)
				w.release()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > size {
		t.Fatalf("%d slots held at once, window is %d", m, size)
	}
	if n := w.inFlight(); n != 0 {
		t.Fatalf("inFlight = %d after every slot was given back", n)
	}
}

// BenchmarkWindow is the cost of one report's slot: acquire and release on a
// window with room, from one goroutine and from GOMAXPROCS goroutines at once.
func BenchmarkWindow(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		w := newWindow(64)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := w.acquire(ctx, nil); err != nil {
				b.Fatal(err)
			}
			w.release()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		w := newWindow(1 << 20)
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := w.acquire(ctx, nil); err != nil {
					b.Error(err)
					return
				}
				w.release()
			}
		})
	})
}
