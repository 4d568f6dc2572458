package spool

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// Pids of the segments these tests lay out: livePID runs (as the other process
// of an upgrade would), deadPID does not; the spool itself runs as os.Getpid().
const (
	livePID = 1 << 22
	deadPID = 1<<22 + 1
)

type retentionObs struct {
	mu        sync.Mutex
	removed   []string // names, in order
	reasons   []string
	last      RetentionStats
	passes    int
	discarded int64
	refused   int
}

func (o *retentionObs) Discarded(n int64) { o.mu.Lock(); o.discarded += n; o.mu.Unlock() }
func (o *retentionObs) RefusedFull(n int) { o.mu.Lock(); o.refused += n; o.mu.Unlock() }

func (o *retentionObs) Retained(st RetentionStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last, o.passes = st, o.passes+1
}

func (o *retentionObs) SegmentRemoved(name string, _ int64, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.removed = append(o.removed, name)
	o.reasons = append(o.reasons, reason)
}

func (o *retentionObs) snapshot() (removed, reasons []string, last RetentionStats, passes int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.removed), slices.Clone(o.reasons), o.last, o.passes
}

// layOut writes a segment of size bytes for pid, started at start, last written
// at mod, and returns its name.
func layOut(t *testing.T, dir string, pid int, n uint64, start, mod time.Time, size int) string {
	t.Helper()
	name := SegmentName(start, pid, n)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
	return name
}

func openRetaining(t *testing.T, dir string, maxBytes int64, maxAge time.Duration) (*Spool, *retentionObs) {
	t.Helper()
	obs := &retentionObs{}
	s := open(t, Options{Dir: dir, MaxBytes: maxBytes, MaxAge: maxAge, RetentionObserver: obs,
		Alive: func(pid int) bool { return pid == livePID }})
	return s, obs
}

func present(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range segs {
		out = append(out, g.Name)
	}
	return out
}

func TestRetentionBytesOldestClosedFirst(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour)
	now := time.Now()
	d1 := layOut(t, dir, deadPID, 1, t0, now, 1000)
	l1 := layOut(t, dir, livePID, 1, t0.Add(time.Second), now, 1000)
	d2 := layOut(t, dir, deadPID, 2, t0.Add(2*time.Second), now, 1000)      // a dead process's newest: closed
	l2 := layOut(t, dir, livePID, 2, t0.Add(3*time.Second), now, 1000)      // a live process's newest: still written
	own := layOut(t, dir, os.Getpid(), 1, t0.Add(4*time.Second), now, 1000) // an older run with this pid: closed
	s, obs := openRetaining(t, dir, 2500, 0)

	s.retainPass()
	removed, reasons, last, _ := obs.snapshot()
	// 5000 bytes plus the spool's empty current segment: the three oldest closed
	// ones go; l2 (live) and the current segment stay whatever the limit.
	if want := []string{d1, l1, d2}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, r := range reasons {
		if r != RemovedForBytes {
			t.Errorf("reason %q, want %q", r, RemovedForBytes)
		}
	}
	if last.Bytes != 2000 || last.Segments != 3 {
		t.Errorf("after the pass: %d bytes in %d segments, want 2000 in 3", last.Bytes, last.Segments)
	}
	if last.DiskSize <= 0 || last.DiskFree <= 0 || last.DiskFree > last.DiskSize {
		t.Errorf("disk free %d of %d", last.DiskFree, last.DiskSize)
	}
	got := present(t, dir)
	if !slices.Contains(got, l2) || !slices.Contains(got, own) || len(got) != 3 {
		t.Errorf("left %v, want %s, %s and the current segment", got, l2, own)
	}

	// Under the limit nothing more goes; with the limit lowered to 1 byte the
	// older run's segment goes, the live process's and the current one stay.
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); len(removed) != 3 {
		t.Fatalf("a pass under the limit removed %v", removed[3:])
	}
	s.SetRetention(1, 0)
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); len(removed) != 4 || removed[3] != own {
		t.Fatalf("removed %v, want %s last", removed, own)
	}
	if got := present(t, dir); len(got) != 2 || got[0] != l2 {
		t.Errorf("left %v, want %s and the current segment", got, l2)
	}
}

func TestRetentionAge(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-3 * time.Hour)
	old := layOut(t, dir, deadPID, 1, t0, t0.Add(time.Minute), 10)
	recent := layOut(t, dir, deadPID, 2, t0.Add(time.Hour), time.Now().Add(-time.Minute), 10)
	liveOld := layOut(t, dir, livePID, 1, t0, t0.Add(time.Minute), 10) // still written: its age does not count
	s, obs := openRetaining(t, dir, 0, time.Hour)

	s.retainPass()
	removed, reasons, _, _ := obs.snapshot()
	if !slices.Equal(removed, []string{old}) || !slices.Equal(reasons, []string{RemovedForAge}) {
		t.Fatalf("removed %v for %v, want %s for age", removed, reasons, old)
	}
	if got := present(t, dir); !slices.Contains(got, recent) || !slices.Contains(got, liveOld) {
		t.Errorf("left %v, want %s and %s kept", got, recent, liveOld)
	}
}

// Without limits nothing is removed, and the current segment is never removed,
// even when its name is not its pid's newest (the wall clock stepped back).
func TestRetentionKeepsCurrentSegment(t *testing.T) {
	dir := t.TempDir()
	future := time.Now().Add(time.Hour)
	ahead := layOut(t, dir, os.Getpid(), 1, future, time.Now(), 100)
	s, obs := openRetaining(t, dir, 0, 0)
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); len(removed) != 0 {
		t.Fatalf("no limits, removed %v", removed)
	}
	s.SetRetention(1, time.Nanosecond)
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); len(removed) != 0 {
		t.Fatalf("removed %v: the newest name of this pid and the current segment are both kept", removed)
	}
	if got := present(t, dir); len(got) != 2 || got[1] != ahead {
		t.Errorf("left %v", got)
	}
}

// The actor removes nothing before ready, passes after every rotation once it
// is, and keeps the directory near the limit while data flows.
func TestRetainAfterReady(t *testing.T) {
	dir := t.TempDir()
	const seg, limit = 4096, 5 * 4096
	s, obs := openRetaining(t, dir, limit, 0)
	s.SetSegmentSize(seg)
	ready := make(chan struct{})
	s.Retain(ready)
	payload := []byte(`"` + strings.Repeat("p", 1000) + `"`)
	write := func(from, n uint64) {
		for i := from; i < from+n; i++ {
			b := &ingest.Batch{}
			b.Add(&ingest.Record{ClientID: "c", Seq: i, Received: time.Now(), Payload: payload})
			w := newWaiter()
			s.Submit(b, w)
			if err := w.wait(t); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 100)
	if removed, _, _, passes := obs.snapshot(); len(removed) != 0 || passes != 0 {
		t.Fatalf("before ready: %d passes removed %v", passes, removed)
	}
	close(ready)
	testutil.Eventually(t, waitTimeout, func() bool { _, _, st, _ := obs.snapshot(); return st.Bytes > 0 && st.Bytes <= limit },
		"the directory comes under the limit once ready")
	write(100, 300)
	// Retention runs beside the committer, woken by each rotation: it follows
	// the writes closely, not in lock step.
	testutil.Eventually(t, waitTimeout, func() bool { return dirBytes(t, dir) <= limit+seg },
		"the directory comes back under the limit plus the segment being written")
	if removed, _, _, _ := obs.snapshot(); len(removed) < 80 {
		t.Errorf("%d segments removed, want most of the ~100 written", len(removed))
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, name := range present(t, dir) {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// A segment a reader has not finished (Options.Unsent: the forwarder) is kept
// past both limits; once finished it goes.
func TestRetentionKeepsUnsentSegments(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-3 * time.Hour)
	sent := layOut(t, dir, deadPID, 1, t0, t0, 100)
	unsent := layOut(t, dir, deadPID, 2, t0.Add(time.Minute), t0, 100)
	var mu sync.Mutex
	finished := map[string]bool{sent: true}
	obs := &retentionObs{}
	s := open(t, Options{Dir: dir, MaxBytes: 1, MaxAge: time.Hour, RetentionObserver: obs,
		Alive: func(pid int) bool { return pid == livePID },
		Unsent: func() func(string) (bool, int64) {
			mu.Lock()
			defer mu.Unlock()
			done := maps.Clone(finished)
			return func(name string) (bool, int64) { return !done[name], 0 }
		}})
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); !slices.Equal(removed, []string{sent}) {
		t.Fatalf("removed %v, want only the forwarded %s", removed, sent)
	}
	mu.Lock()
	finished[unsent] = true
	mu.Unlock()
	s.retainPass()
	if removed, _, _, _ := obs.snapshot(); !slices.Equal(removed, []string{sent, unsent}) {
		t.Fatalf("removed %v, want %s once forwarded", removed, unsent)
	}
}
