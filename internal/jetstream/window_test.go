package jetstream

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	const timeout = 2 * time.Second // target 1 s
	t0 := time.Unix(1000, 0)
	w := newWindow(4096, timeout)
	if w.size() != initialWindow {
		t.Fatalf("starts at %d, want %d", w.size(), initialWindow)
	}
	if !w.admits(100000, 0) || w.admits(1, initialWindow) || !w.admits(6, initialWindow-6) {
		t.Fatal("admits: an empty pipeline takes any batch; a full window none")
	}

	// Fast acknowledgements: each batch adds its size (doubling per round trip), up to max_pending.
	w.observe(t0, 100*time.Millisecond, true, 64, 256)
	if w.size() != initialWindow+64 {
		t.Fatalf("after a fast ack of 64: %d, want %d", w.size(), initialWindow+64)
	}
	// Between half the target and the target: an eighth of the batch.
	w.observe(t0, 700*time.Millisecond, true, 64, 256)
	if w.size() != initialWindow+64+8 {
		t.Fatalf("after a slower ack of 64: %d, want %d", w.size(), initialWindow+64+8)
	}
	for range 200 {
		w.observe(t0, time.Millisecond, true, 64, 64)
	}
	if w.size() != 4096 {
		t.Fatalf("after many fast acks: %d, want max_pending 4096", w.size())
	}
	// A fast failure says nothing of the broker's pace.
	w = newWindow(4096, timeout)
	w.observe(t0, time.Millisecond, false, 64, 64)
	if w.size() != initialWindow {
		t.Fatalf("after a fast failure: %d, want %d", w.size(), initialWindow)
	}

	// A late ack halves from what was in flight (less than the window here).
	w = newWindow(4096, timeout)
	for range 100 {
		w.observe(t0, time.Millisecond, true, 64, 64)
	}
	if !w.observe(t0.Add(time.Second), 1500*time.Millisecond, true, 8, 1000) || w.size() != 500 {
		t.Fatalf("late ack with 1000 in flight: window %d, want 500", w.size())
	}
	// Another batch published before that cut was taken: no second cut.
	if w.observe(t0.Add(2*time.Second), 1200*time.Millisecond, true, 8, 1000) || w.size() != 500 {
		t.Fatalf("late ack of a batch published before the cut: window %d, want 500", w.size())
	}
	// One published after it: cut again, from the window (less than in flight).
	if !w.observe(t0.Add(3*time.Second), 1200*time.Millisecond, true, 8, 1000) || w.size() != 250 {
		t.Fatalf("late ack after the cut: window %d, want 250", w.size())
	}
	// A timeout is a late ack; the window stops at minWindow.
	for i := range 10 {
		w.observe(t0.Add(time.Duration(10+i*10)*time.Second), timeout, false, 8, 1000)
	}
	if w.size() != minWindow {
		t.Fatalf("after many timeouts: %d, want %d", w.size(), minWindow)
	}

	// max_pending below minWindow: the window is max_pending, fixed.
	w = newWindow(10, timeout)
	if w.size() != 10 || w.admits(1, 10) {
		t.Fatalf("max_pending 10: window %d", w.size())
	}
	w.observe(t0, 2*timeout, false, 10, 10)
	if w.size() != 10 {
		t.Fatalf("max_pending 10 after a timeout: %d, want 10", w.size())
	}
}
