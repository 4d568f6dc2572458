package client

import (
	"context"
	"sync/atomic"
)

// window bounds the reports in flight: a report holds one slot from its admission
// (Report or Go) until its outcome. The slots are an atomic counter, so taking and
// giving back a slot costs one atomic operation and no lock while the window has
// room; only a caller that finds it full waits, on wake, its caller's context or
// Close.
type window struct {
	size    int64
	taken   atomic.Int64  // slots taken, never above size
	waiters atomic.Int32  // callers between finding the window full and leaving acquire
	wake    chan struct{} // a token says a slot may have come free; holds at most one
}

func newWindow(size int) *window {
	return &window{size: int64(size), wake: make(chan struct{}, 1)}
}

// tryAcquire takes a slot if one is free.
func (w *window) tryAcquire() bool {
	for {
		n := w.taken.Load()
		if n >= w.size {
			return false
		}
		if w.taken.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire takes a slot, waiting while the window is full until ctx ends (its
// error) or Close starts (ErrClosed: closing is closed). A slot taken as ctx ends
// is given back: the caller's deadline wins over a report it no longer waits for.
// Go passes context.Background(), whose Done is nil: only Close ends its wait.
func (w *window) acquire(ctx context.Context, closing <-chan struct{}) error {
	if !w.tryAcquire() {
		if err := w.wait(ctx, closing); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		w.release()
		return err
	}
	return nil
}

// wait takes a slot once one comes free. A waiter counts itself in waiters before
// it looks at taken, and release looks at waiters after it lowered taken, so
// either the waiter sees the free slot or the releaser sees the waiter and leaves
// a token. One token wakes one waiter; a waiter that got a slot and sees more free
// ones while others still wait passes a token on, so no free slot is left with a
// waiter asleep.
func (w *window) wait(ctx context.Context, closing <-chan struct{}) error {
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	for !w.tryAcquire() {
		select {
		case <-w.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return ErrClosed
		}
	}
	if w.waiters.Load() > 1 && w.taken.Load() < w.size {
		w.signal()
	}
	return nil
}

// release frees the slot of a finished (or refused) report.
func (w *window) release() {
	w.taken.Add(-1)
	if w.waiters.Load() > 0 {
		w.signal()
	}
}

// releaseN frees the slots of n finished reports at once (n ≥ 0).
func (w *window) releaseN(n int) {
	if n == 0 {
		return
	}
	w.taken.Add(-int64(n))
	if w.waiters.Load() > 0 {
		w.signal()
	}
}

// signal leaves a wake token unless one is already waiting to be taken.
func (w *window) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// inFlight is how many slots are taken.
func (w *window) inFlight() int { return int(w.taken.Load()) }
