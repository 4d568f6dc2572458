package heaptrim

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
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

// gcPercent reads GOGC as the runtime has it.
func gcPercent() int64 { return read(newSamples()).gogc }

// TestRunLowersGOGCWhileQuiet runs the Trimmer on an idle process until it
// lowers GOGC, then allocates until it gives the operator's back, and checks
// that it leaves the operator's when it ends.
func TestRunLowersGOGCWhileQuiet(t *testing.T) {
	operator := debug.SetGCPercent(100)
	defer debug.SetGCPercent(operator)
	tr := New(zap.NewNop())
	tr.Tick, tr.QuietBytes, tr.QuietGOGC = 20*time.Millisecond, 64<<10, 25
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	waitFor := func(what string, cond func() bool, work func()) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("%s: GOGC is %d", what, gcPercent())
			}
			work()
		}
	}
	waitFor("never lowered while quiet", func() bool { return gcPercent() == 25 }, func() { time.Sleep(5 * time.Millisecond) })
	var sink [][]byte
	waitFor("never given back while allocating", func() bool { return gcPercent() == 100 }, func() {
		// Far above QuietBytes a tick, however late the ticks come.
		for range 64 {
			sink = append(sink, make([]byte, 64<<10))
		}
		if len(sink) > 1024 {
			sink = sink[:0]
		}
	})
	waitFor("never lowered again once quiet", func() bool { return gcPercent() == 25 }, func() { sink = nil; time.Sleep(5 * time.Millisecond) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC %d once the Trimmer ended, want the operator's 100", got)
	}
}

func TestGOGCLeavesOffAndLowSettingsAlone(t *testing.T) {
	operator := debug.SetGCPercent(100)
	defer debug.SetGCPercent(operator)
	for _, tc := range []struct{ operator, quiet int }{{-1, 25}, {20, 25}, {25, 25}, {100, 0}} {
		debug.SetGCPercent(tc.operator)
		g := newGOGC(tc.operator, tc.quiet)
		g.set(true)
		if got := gcPercent(); got != int64(tc.operator) && !(tc.operator < 0 && got <= 0) {
			t.Errorf("operator GOGC %d, quiet %d: quiet set GOGC %d", tc.operator, tc.quiet, got)
		}
		g.set(false)
	}
}
