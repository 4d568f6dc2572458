package spool

import (
	"errors"
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

// forwarded stands in for the forwarder's position: which segments are sent.
type forwarded struct {
	mu   sync.Mutex
	all  bool // every segment existing at the next pass counts as sent
	done map[string]bool
}

func (f *forwarded) unsent() func(string) (bool, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	all, done := f.all, maps.Clone(f.done)
	return func(name string) (bool, int64) { return !all && !done[name], 0 }
}

func (f *forwarded) setAll(v bool) { f.mu.Lock(); f.all = v; f.mu.Unlock() }

// With the forwarder behind and no discard, spool.max_bytes is hard: a batch that
// would pass it is refused with a retry hint, the directory stays within the limit
// (plus the batch that reached it), and writes go on once the forwarder catches up.
func TestHardLimitRefusesWhileUnsentFillsTheLimit(t *testing.T) {
	dir := t.TempDir()
	const seg, limit = 4096, 6 * 4096
	fw := &forwarded{}
	obs := &retentionObs{}
	s := open(t, Options{Dir: dir, MaxBytes: limit, RetentionObserver: obs, SegmentSize: seg,
		Alive: func(pid int) bool { return pid == livePID }, Unsent: fw.unsent})
	ready := make(chan struct{})
	close(ready)
	s.Retain(ready)
	testutil.Eventually(t, waitTimeout, func() bool { _, _, _, p := obs.snapshot(); return p > 0 }, "a first retention pass")
	payload := []byte(`"` + strings.Repeat("p", 1000) + `"`)
	write := func(seq uint64) error {
		b := &ingest.Batch{}
		b.Add(&ingest.Record{ClientID: "c", Seq: seq, Received: time.Now(), Payload: payload})
		w := newWaiter()
		s.Submit(b, w)
		return w.wait(t)
	}
	var seq uint64
	var err error
	for ; seq < 1000 && err == nil; seq++ {
		err = write(seq)
	}
	var full *ingest.FullError
	if !errors.As(err, &full) || full.RetryAfter <= 0 {
		t.Fatalf("after %d records: %v, want a FullError with a retry hint", seq, err)
	}
	if n := ingest.Nack(err); !n.Retryable || n.RetryAfterMS <= 0 {
		t.Fatalf("NACK %+v, want retryable with retry_after_ms", n)
	}
	if got := dirBytes(t, dir); got > limit {
		t.Fatalf("the directory holds %d bytes, over the hard limit %d", got, limit)
	}
	// The count errs on the safe side (a pass may find a little room left), but
	// with nothing forwarded the refusals soon last.
	for run, tries := 0, 0; run < 20; tries++ {
		if tries == 500 {
			t.Fatalf("no 20 refusals in a row at the limit with nothing forwarded")
		}
		if err := write(seq); errors.As(err, &full) {
			run++
		} else if err != nil {
			t.Fatal(err)
		} else {
			run = 0
		}
		seq++
		if got := dirBytes(t, dir); got > limit {
			t.Fatalf("the directory holds %d bytes, over the hard limit %d", got, limit)
		}
	}
	if removed, _, _, _ := obs.snapshot(); len(removed) != 0 {
		t.Fatalf("removed %v: nothing forwarded may go", removed)
	}
	obs.mu.Lock()
	refused := obs.refused
	obs.mu.Unlock()
	if refused < 21 {
		t.Errorf("%d records counted refused, want at least 21", refused)
	}
	if n := len(segmentNames(t, dir)); n < 6 {
		t.Errorf("%d segments: the limit was reached before a segment's worth was written", n)
	}
	// The forwarder catches up: the closed segments go, and writes go on.
	fw.setAll(true)
	testutil.Eventually(t, waitTimeout, func() bool { err := write(seq); seq++; return err == nil }, "a write accepted once forwarded")
	if got := dirBytes(t, dir); got > limit {
		t.Fatalf("the directory holds %d bytes, over the hard limit %d", got, limit)
	}
}

// A limit smaller than a segment does not refuse for ever: refusing closes the
// segment being written, which the forwarder can then finish and retention remove.
func TestHardLimitBelowASegmentRecovers(t *testing.T) {
	dir := t.TempDir()
	const limit = 8192
	fw := &forwarded{}
	obs := &retentionObs{}
	s := open(t, Options{Dir: dir, MaxBytes: limit, RetentionObserver: obs, SegmentSize: 1 << 20,
		Alive: func(pid int) bool { return pid == livePID }, Unsent: fw.unsent})
	ready := make(chan struct{})
	close(ready)
	s.Retain(ready)
	testutil.Eventually(t, waitTimeout, func() bool { _, _, _, p := obs.snapshot(); return p > 0 }, "a first retention pass")
	var err error
	seq := uint64(0)
	for ; seq < 100 && err == nil; seq++ {
		w := newWaiter()
		s.Submit(batchOf("c", seq), w)
		err = w.wait(t)
	}
	if err == nil {
		t.Fatal("never refused at the limit")
	}
	fw.setAll(true)
	testutil.Eventually(t, waitTimeout, func() bool {
		w := newWaiter()
		s.Submit(batchOf("c", seq), w)
		seq++
		return w.wait(t) == nil
	}, "writes accepted again")
}

// With spool.discard: old, the byte limit removes a segment not yet forwarded,
// oldest first, and counts the records past what was forwarded.
func TestRetentionDiscardsUnsentWhenAllowed(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour)
	old := SegmentName(t0, deadPID, 1)
	if err := os.WriteFile(filepath.Join(dir, old), []byte("a\nb\nc\nd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newer := SegmentName(t0.Add(time.Minute), deadPID, 2)
	if err := os.WriteFile(filepath.Join(dir, newer), []byte("e\nf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	obs := &retentionObs{}
	s := open(t, Options{Dir: dir, MaxBytes: 4, RetentionObserver: obs, DiscardUnsent: true,
		Alive: func(pid int) bool { return pid == livePID },
		Unsent: func() func(string) (bool, int64) {
			return func(name string) (bool, int64) {
				if name == old {
					return true, 4 // "a\nb\n" forwarded
				}
				return true, 0
			}
		}})
	s.retainPass()
	removed, reasons, _, _ := obs.snapshot()
	if !slices.Equal(removed, []string{old}) || reasons[0] != RemovedDiscarded {
		t.Fatalf("removed %v (%v), want the oldest %s, discarded", removed, reasons, old)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.discarded != 2 {
		t.Errorf("%d records counted discarded, want the 2 not forwarded", obs.discarded)
	}
}

func segmentNames(t *testing.T, dir string) []Segment {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}
