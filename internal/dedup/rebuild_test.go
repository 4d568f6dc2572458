package dedup

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// segName is the name of process pid's n-th segment, started n seconds into the
// test's hour: names sort by n.
func segName(n int, pid int) string {
	return spool.SegmentName(time.Date(2026, 11, 24, 9, 0, n, 0, time.UTC), pid, uint64(n))
}

// record is one report's line as the spool writes it.
func record(id string, seq uint64, payload string) []byte {
	var b ingest.Batch
	b.Add(&ingest.Record{ClientID: id, Seq: seq, ConnID: 3,
		Received: time.Date(2026, 11, 24, 9, 0, 0, 5, time.UTC), Payload: []byte(payload)})
	return b.Lines()
}

func writeSeg(t testing.TB, dir, name string, lines ...[]byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.Write(l); err != nil {
			t.Fatal(err)
		}
	}
}

func verdicts(t *testing.T, tb *Table, id string, want map[uint64]Verdict) {
	t.Helper()
	c := tb.Attach(id)
	defer tb.Detach(c)
	for s, v := range want {
		if got := c.Check(s, nil); got != v {
			t.Errorf("%s seq %d: %s, want %s", id, s, got, v)
		}
	}
}

func TestRebuildFromTail(t *testing.T) {
	dir := t.TempDir()
	const self, other = 100, 200   // a segment of the restarted process's own pid counts too (pid 1 in containers)
	old := record("a", 1, `"old"`) // in a segment beyond the budget
	writeSeg(t, dir, segName(1, other), old)
	writeSeg(t, dir, segName(2, other), record("a", 2, `1`), record("b\"q", 5, `1`), record("a", 3, `1`))
	// The newest segment ends in a torn line: never acked, must not count.
	torn := record("a", 4, `1`)
	writeSeg(t, dir, segName(3, other), record("c", 9, `1`), []byte("not a record\n"), torn[:len(torn)-5])
	writeSeg(t, dir, segName(0, self), record("a", 50, `1`)) // beyond the budget
	writeSeg(t, dir, segName(4, self), record("d", 1, `1`))  // the newest
	writeSeg(t, dir, "unrelated.txt", record("a", 60, `1`))
	budget := fileSize(t, dir, segName(4, self)) + fileSize(t, dir, segName(3, other)) + fileSize(t, dir, segName(2, other)) + 10 // 10 bytes into segment 1
	tb, err := New(Options{Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	st, segs, err := tb.Rebuild(dir, budget)
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	if st.Lines != 5 || st.Bad != 1 || st.Segments != 4 || st.Clients != 4 {
		t.Fatalf("stats %+v; want 5 records, 1 bad line, 4 segments, 4 clients", st)
	}
	verdicts(t, tb, "a", map[uint64]Verdict{1: Store, 2: Durable, 3: Durable, 4: Store, 50: Store, 60: Store})
	verdicts(t, tb, `b"q`, map[uint64]Verdict{5: Durable})
	verdicts(t, tb, "c", map[uint64]Verdict{9: Durable})
	verdicts(t, tb, "d", map[uint64]Verdict{1: Durable})
	// For Follow: the torn line is where reading stopped.
	for _, s := range segs {
		if s.name == segName(3, other) {
			if want := fileSize(t, dir, s.name) - int64(len(torn)-5); s.off != want {
				t.Errorf("newest segment read to %d, want %d (before the torn line)", s.off, want)
			}
		}
	}
}

func TestRebuildEmptyOrMissingDir(t *testing.T) {
	tb, _ := New(Options{})
	if st, _, err := tb.Rebuild(filepath.Join(t.TempDir(), "none"), 1<<20); err != nil || st.Lines != 0 {
		t.Fatalf("missing dir: %+v, %v", st, err)
	}
}

func fileSize(t testing.TB, dir, name string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestFollowParentUntilItExits(t *testing.T) {
	dir := t.TempDir()
	const parent = 300
	writeSeg(t, dir, segName(1, parent), record("a", 1, `1`))
	tb, _ := New(Options{Window: 64})
	_, segs, err := tb.Rebuild(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A line half-written at the rebuild, finished afterwards.
	half := record("a", 2, `1`)
	writeSeg(t, dir, segName(1, parent), half[:10])

	var alive atomic.Bool
	alive.Store(true)
	ready := make(chan struct{})
	done := make(chan FollowStats, 1)
	go func() {
		st, err := tb.Follow(context.Background(), dir, parent, segs, 1e6 /* 1ms */, func(int) bool { return alive.Load() }, func() {
			tb.SetReady()
			close(ready)
		})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	<-ready
	writeSeg(t, dir, segName(1, parent), half[10:], record("a", 3, `1`))
	writeSeg(t, dir, segName(2, parent), record("b", 7, `1`)) // the parent rotated
	c := tb.Attach("b")
	testutil.Eventually(t, 5e9, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.has
	}, "the follower to read the parent's new segment")
	tb.Detach(c)
	// The parent's last write, then its exit: whichever pass comes next, the
	// follower reads to the end after it sees the parent gone.
	writeSeg(t, dir, segName(2, parent), record("b", 8, `1`))
	alive.Store(false)
	st := <-done
	if st.Lines != 4 {
		t.Fatalf("followed %d records, want 4", st.Lines)
	}
	verdicts(t, tb, "a", map[uint64]Verdict{1: Durable, 2: Durable, 3: Durable, 4: Store})
	verdicts(t, tb, "b", map[uint64]Verdict{7: Durable, 8: Durable})
}

// A followed segment truncated after a failed write is read on from its new end.
func TestFollowTruncatedSegment(t *testing.T) {
	dir := t.TempDir()
	tb, _ := New(Options{Window: 64})
	tb.SetReady()
	name := segName(1, 400)
	writeSeg(t, dir, name, record("a", 1, `1`), record("a", 2, `1`))
	f := SegmentFile{name: name, pid: 400}
	r := &reader{t: tb}
	if err := r.scan(dir, &f); err != nil || r.lines != 2 {
		t.Fatalf("scan: %d lines, %v", r.lines, err)
	}
	good := int64(len(record("a", 1, `1`)))
	if err := os.Truncate(filepath.Join(dir, name), good); err != nil {
		t.Fatal(err)
	}
	if err := r.scan(dir, &f); err != nil || f.off != good {
		t.Fatalf("after truncation: read to %d, %v; want %d", f.off, err, good)
	}
	writeSeg(t, dir, name, record("a", 3, `1`))
	if err := r.scan(dir, &f); err != nil || r.lines != 3 {
		t.Fatalf("after truncation: %d lines, %v; want the line written after it", r.lines, err)
	}
}

// A line longer than the read buffer is read whole.
func TestRebuildLongLine(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 3*readChunk)
	for i := range big {
		big[i] = 'x'
	}
	writeSeg(t, dir, segName(1, 5), record("a", 1, `1`), record("a", 2, `"`+string(big)+`"`), record("a", 3, `1`))
	tb, _ := New(Options{Window: 64})
	if st, _, err := tb.Rebuild(dir, 1<<30); err != nil || st.Lines != 3 {
		t.Fatalf("%+v, %v; want 3 records", st, err)
	}
}
