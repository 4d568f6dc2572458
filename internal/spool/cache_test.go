package spool

import (
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// drops records the segments the page-cache actor drops, in order.
type drops struct {
	mu    sync.Mutex
	names []string
}

func (d *drops) drop(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names = append(d.names, name)
	return nil
}

func (d *drops) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.names)
}

// rotations commits n batches of one record each, every one ending its segment
// (the segment size is 1 byte), and returns once the last rotation is done.
func rotations(t *testing.T, s *Spool, from uint64, n int) {
	t.Helper()
	for seq := from; seq < from+uint64(n); seq++ {
		submitWait(t, s, batchOf("c", seq))
	}
	flush(t, s)
}

// closedSegments returns the segments the spool has closed so far, oldest first,
// with their sizes: every segment it opened but the current one.
func closedSegments(t *testing.T, s *Spool) ([]string, []int64) {
	t.Helper()
	_, _, opened := s.obs.(*observer).snapshot()
	names := opened[:len(opened)-1]
	sizes := make([]int64, len(names))
	for i, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		sizes[i] = fi.Size()
	}
	return names, sizes
}

func TestCacheDropsOldestClosedSegmentsPastTheLimit(t *testing.T) {
	d := &drops{}
	s := open(t, Options{SegmentSize: 1, DropCache: d.drop})
	rotations(t, s, 1, 1)
	_, sizes := closedSegments(t, s)
	// Room for three closed segments of this size, not four.
	limit := 3*sizes[0] + sizes[0]/2
	s.SetCacheBytes(limit)
	rotations(t, s, 2, 9)
	names, sizes := closedSegments(t, s)
	if len(names) != 10 {
		t.Fatalf("%d closed segments, want 10", len(names))
	}
	// What stays is the shortest run of the newest closed segments that holds
	// the limit; the first segment was closed before there was a limit, so it
	// was never queued.
	keep, kept := len(names), int64(0)
	for keep > 1 && kept < limit {
		keep--
		kept += sizes[keep]
	}
	want := names[1:keep]
	if len(want) != 5 {
		t.Fatalf("the test expects 5 of 9 segments dropped, not %d: segment sizes %v", len(want), sizes)
	}
	testutil.Eventually(t, waitTimeout, func() bool { return len(d.list()) >= len(want) },
		"%d segments dropped from the page cache", len(want))
	s.Close() // the actor has exited: no more drops can come
	if got := d.list(); !slices.Equal(got, want) {
		t.Fatalf("dropped %v,\nwant %v (the oldest closed, keeping the newest %d bytes)", got, want, limit)
	}
}

func TestCacheZeroLeavesThePageCacheToTheKernel(t *testing.T) {
	d := &drops{}
	s := open(t, Options{SegmentSize: 1, DropCache: d.drop})
	rotations(t, s, 1, 5)
	// Segments closed while the limit is 0 are not tracked: a limit set later
	// drops only what closes after it.
	s.SetCacheBytes(1)
	rotations(t, s, 6, 3)
	names, _ := closedSegments(t, s)
	testutil.Eventually(t, waitTimeout, func() bool { return len(d.list()) >= 2 }, "2 segments dropped")
	s.Close()
	// Of the three closed after the limit was set, the newest stays: it holds
	// the limit's byte.
	if got, want := d.list(), names[len(names)-3:len(names)-1]; !slices.Equal(got, want) {
		t.Fatalf("dropped %v, want the older two of those closed after the limit was set: %v", got, want)
	}
}
