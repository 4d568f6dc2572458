package heaptrim

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestDue(t *testing.T) {
	tr := New(zap.NewNop())
	base := sample{allocs: 1 << 30, free: 64 << 20, live: 100 << 20, objects: 100 << 20, limit: math.MaxInt64, gogc: 100}
	with := func(f func(*sample)) sample { s := base; f(&s); return s }
	for _, tc := range []struct {
		name string
		now  sample
		want bool
	}{
		{"quiet, much free", with(func(s *sample) { s.allocs += 1 << 20 }), true},
		{"heartbeats' garbage, a tenth of live a second", with(func(s *sample) { s.allocs += 10 << 20 }), true},
		{"allocating", with(func(s *sample) { s.allocs += 16 << 20 }), false},
		{"little free", with(func(s *sample) { s.free = 4 << 20 }), false},
		{"free below a quarter of live", with(func(s *sample) { s.free = 20 << 20 }), false},
		{"garbage not yet collected", with(func(s *sample) { s.free, s.objects = 0, 140<<20 }), true},
		{"GOMEMLIMIT set", with(func(s *sample) { s.limit = 1 << 30 }), false},
		{"GOGC=off", with(func(s *sample) { s.gogc = -1 }), false},
	} {
		if got := tr.due(base, tc.now, time.Second); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRunReturnsFreeHeap grows the heap, drops it, and waits for the Trimmer
// to hand the free pages back to the OS. The runtime's scavenger returns free
// pages too, at its own pace: when it got there first (a slow, loaded machine),
// there is nothing left to trim, so the heap is grown and dropped again.
func TestRunReturnsFreeHeap(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	tr := New(zap.New(core))
	// Quiet is TestDue's matter; here a loaded machine's late ticks must not
	// make the test's own allocation count as load.
	tr.Tick, tr.Interval, tr.MinFree, tr.QuietBytes = 20*time.Millisecond, 0, 1<<20, 8<<20
	ms := newSamples()
	holdFree := func() {
		garbage := make([][]byte, 0, 256)
		for range 256 {
			garbage = append(garbage, make([]byte, 64<<10))
		}
		garbage = nil
		_ = garbage
		runtime.GC() // the garbage becomes free heap, held
	}
	holdFree()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for tr.trims.Load() == 0 {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no trim with %d bytes of free heap held", read(ms).free)
		}
		time.Sleep(10 * time.Millisecond)
		if tr.trims.Load() == 0 && read(ms).free < tr.MinFree {
			holdFree()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// What the trim returned, from its own log line: the test may have grown
	// the heap again since.
	trimmed := logs.FilterMessageSnippet("heap trimmed").All()
	if len(trimmed) == 0 {
		t.Fatal("a trim was counted but not logged")
	}
	// It was due with at least MinFree to give back; the scavenger may have
	// taken some of it between the Trimmer's look and the trim, never most.
	if back := trimmed[0].ContextMap()["returned"].(uint64); back < tr.MinFree/2 {
		t.Errorf("the trim returned %d bytes, due with at least %d to give back", back, tr.MinFree)
	}
}
