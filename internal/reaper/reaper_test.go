package reaper

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestInterval(t *testing.T) {
	for _, c := range []struct{ d, want time.Duration }{
		{time.Millisecond, minInterval},
		{time.Second, 250 * time.Millisecond},
		{time.Hour, maxInterval},
	} {
		if got := Interval(c.d); got != c.want {
			t.Errorf("Interval(%v) = %v, want %v", c.d, got, c.want)
		}
	}
}

// Passes run until Stop, whose return means no pass runs; a changed timeout is followed.
func TestReaperPassesUntilStop(t *testing.T) {
	var passes atomic.Int64
	var shortest atomic.Int64
	shortest.Store(int64(time.Hour))
	r := Start(func() time.Duration { return time.Duration(shortest.Load()) }, func() {
		passes.Add(1)
		shortest.Store(int64(40 * time.Millisecond)) // a reload shortened a timeout
	})
	testutil.Eventually(t, 10*time.Second, func() bool { return passes.Load() >= 3 }, "three passes")
	r.Stop()
	select {
	case <-r.done:
	default:
		t.Fatal("Stop returned with the passes' goroutine running")
	}
}
