package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// TestGroupCommit has many goroutines submit at once to a real directory: every
// Waiter is told exactly once, with its own seqs, and the segment holds every
// record exactly once.
func TestGroupCommit(t *testing.T) {
	const goroutines, submits = 16, 200
	obs := &observer{}
	s := open(t, Options{Observer: obs})
	dir := s.dir

	type sub struct {
		w    *waiter
		seqs []uint64
	}
	subs := make([][]sub, goroutines)
	want := map[key]bool{}
	var wg sync.WaitGroup
	for g := range goroutines {
		client := fmt.Sprintf("client-%d", g)
		var seq uint64
		for i := range submits {
			var seqs []uint64
			for range 1 + i%3 {
				seq++
				seqs = append(seqs, seq)
				want[key{client, seq}] = true
			}
			subs[g] = append(subs[g], sub{newWaiter(), seqs})
		}
		wg.Go(func() {
			var b ingest.Batch
			for _, sb := range subs[g] {
				// A reused batch, as a connection does: Submit must copy.
				b.Reset()
				for _, seq := range sb.seqs {
					addRecord(&b, client, seq)
				}
				s.Submit(&b, sb.w)
				// Scribble over what Submit was given before the batch is reused.
				clear(b.Lines())
				clear(b.Seqs())
			}
		})
	}
	wg.Wait()
	flush(t, s)
	for g := range subs {
		for i, sb := range subs[g] {
			if !sb.w.told() {
				t.Fatalf("goroutine %d submit %d: not told after flush", g, i)
			}
			if n := sb.w.callCount(); n != 1 {
				t.Errorf("goroutine %d submit %d: Committed called %d times", g, i, n)
			}
			if err := sb.w.wait(t); err != nil {
				t.Errorf("goroutine %d submit %d: %v", g, i, err)
			}
			if !slices.Equal(sb.w.seqs, sb.seqs) {
				t.Errorf("goroutine %d submit %d: told seqs %v, submitted %v", g, i, sb.w.seqs, sb.seqs)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readDir(t, dir), want)

	st := stats(t, s)
	batches, _, _ := obs.snapshot()
	t.Logf("%d submits of %d records went to disk in %d batches", goroutines*submits, len(want), st.Batches)
	if st.Records != uint64(len(want)) || st.Batches != uint64(len(batches)) || st.Batches > goroutines*submits || st.WriteErrors != 0 {
		t.Errorf("stats %+v, observed %d batches; want %d records", st, len(batches), len(want))
	}
	var records, bytes int
	for _, b := range batches {
		records += b.records
		bytes += b.bytes
	}
	if n := obs.ackLatencyRecords(); n != len(want) {
		t.Errorf("ack latency observed for %d records, want %d", n, len(want))
	}
	if records != len(want) || uint64(bytes) != st.Bytes {
		t.Errorf("observer saw %d records, %d bytes; stats %+v", records, bytes, st)
	}
}

// TestGroupCommitBatches shows the batching itself: while one write is in
// progress, everything submitted meanwhile goes to disk in one write.
func TestGroupCommitBatches(t *testing.T) {
	fsys := &fakeFS{}
	obs := &observer{}
	s := openFake(t, fsys, Options{Observer: obs})
	g := holdNextWrite(fsys)

	first := newWaiter()
	go s.Submit(batchOf("c", 0), first) // the caller commits: it waits in the held write
	g.waitEntered(t)

	const goroutines, submits = 8, 50
	waiters := make([]*waiter, goroutines*submits)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			for j := range submits {
				n := uint64(1 + i*submits + j)
				w := newWaiter()
				waiters[n-1] = w
				s.Submit(batchOf("c", n), w)
			}
		})
	}
	wg.Wait()
	if first.told() {
		t.Fatal("told before its write finished")
	}
	close(g.release)
	for _, w := range append(waiters, first) {
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	batches, _, _ := obs.snapshot()
	if len(batches) != 2 || batches[0].records != 1 || batches[1].records != goroutines*submits {
		t.Errorf("batches %+v, want one of 1 record and one of %d", batches, goroutines*submits)
	}
	if st := stats(t, s); st.Batches != 2 || st.Records != 1+goroutines*submits {
		t.Errorf("stats %+v", st)
	}
	if f := fsys.file(0); f.writes != 2 {
		t.Errorf("%d writes, want 2", f.writes)
	}
}

// TestSubmitLeadsWithoutFsync: without fsync, a Submit that finds no write in
// progress writes its batch and tells its Waiter before it returns, on the
// caller's goroutine; with fsync, the committer goroutine does it.
func TestSubmitLeadsWithoutFsync(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	w := newWaiter()
	s.Submit(batchOf("c", 1), w)
	if !w.told() {
		t.Fatal("Submit returned before its Waiter was told, with no write in progress")
	}
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}

	s.SetFsync(true)
	g := holdNextWrite(fsys)
	w2 := newWaiter()
	s.Submit(batchOf("c", 2), w2) // returns: the committer writes, and is held
	g.waitEntered(t)
	if w2.told() {
		t.Fatal("told before its write finished")
	}
	close(g.release)
	if err := w2.wait(t); err != nil {
		t.Fatal(err)
	}
	if f := fsys.file(0); f.writes != 2 || f.syncs != 1 {
		t.Errorf("%d writes, %d syncs; want 2 and 1", f.writes, f.syncs)
	}
}

func TestSubmitCopiesItsArguments(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	g := holdNextWrite(fsys)
	go s.Submit(batchOf("c", 1), newWaiter()) // the caller commits: it waits in the held write
	g.waitEntered(t)

	b := batchOf("c", 2, 3)
	w := newWaiter()
	s.Submit(b, w)
	// Reuse the batch at once, as a connection does: same buffers, other records.
	b.Reset()
	addRecord(b, "x", 8)
	addRecord(b, "x", 9)
	close(g.release)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.seqs, []uint64{2, 3}) {
		t.Errorf("told seqs %v, want [2 3]", w.seqs)
	}
	got := parseLines(t, fsys.file(0).data)
	exactlyOnce(t, got, map[key]bool{{"c", 1}: true, {"c", 2}: true, {"c", 3}: true})
}

func TestFsyncPerBatch(t *testing.T) {
	fsys := &fakeFS{}
	obs := &observer{}
	s := openFake(t, fsys, Options{Fsync: true, Observer: obs})
	for i := range uint64(5) {
		w := newWaiter()
		s.Submit(batchOf("c", i), w)
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	if f := fsys.file(0); f.syncs != 5 || f.writes != 5 {
		t.Errorf("%d syncs for %d writes, want 5 for 5", f.syncs, f.writes)
	}
	if fsys.dirSyncs != 1 {
		t.Errorf("directory synced %d times, want once per segment", fsys.dirSyncs)
	}

	s.SetFsync(false)
	for i := range uint64(3) {
		w := newWaiter()
		s.Submit(batchOf("c", 10+i), w)
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	if f := fsys.file(0); f.syncs != 5 || f.writes != 8 {
		t.Errorf("fsync off: %d syncs for %d writes, want 5 for 8", f.syncs, f.writes)
	}
	batches, _, _ := obs.snapshot()
	for i, b := range batches[5:] {
		if b.fsync != 0 {
			t.Errorf("batch %d without fsync reported fsync time %v", 5+i, b.fsync)
		}
	}
}

// segName matches the documented segment name for this process.
var segName = regexp.MustCompile(`^hawk-\d{8}T\d{6}\.\d{9}Z-` + strconv.Itoa(os.Getpid()) + `-\d{6,}\.jsonl$`)

// stepClock is a wall clock that moves on by step at every reading.
func stepClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

func TestRotation(t *testing.T) {
	const segSize = 1024
	obs := &observer{}
	s := open(t, Options{SegmentSize: segSize, Observer: obs, Now: stepClock(time.Millisecond)})
	dir := s.dir
	want := map[key]bool{}
	for i := range uint64(100) {
		seqs := []uint64{2 * i, 2*i + 1}
		w := newWaiter()
		s.Submit(batchOf("c", seqs...), w)
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
		want[key{"c", 2 * i}], want[key{"c", 2*i + 1}] = true, true
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	names := segmentFiles(t, dir)
	_, _, opened := obs.snapshot()
	if len(names) < 5 {
		t.Fatalf("%d segments, want many", len(names))
	}
	for i, name := range names {
		if !segName.MatchString(name) {
			t.Errorf("segment name %q does not match %s", name, segName)
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if i < len(names)-1 && fi.Size() < segSize {
			t.Errorf("%s rotated at %d bytes, before reaching %d", name, fi.Size(), segSize)
		}
	}
	// Name order is creation order; a last segment still empty at Close is removed.
	if extra := len(opened) - len(names); extra < 0 || extra > 1 || !slices.Equal(opened[:len(names)], prefixed(dir, names)) {
		t.Errorf("opened %v, found %v", opened, names)
	}
	got := readDir(t, dir)
	exactlyOnce(t, got, want)
	for i, l := range got {
		if l.Seq != uint64(i) {
			t.Fatalf("record %d has seq %d: name order is not write order", i, l.Seq)
		}
	}
}

func prefixed(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

func TestSetSegmentSize(t *testing.T) {
	s := open(t, Options{SegmentSize: 1 << 30})
	commit := func(seq uint64) { t.Helper(); submitWait(t, s, batchOf("c", seq)) }
	commit(1)
	flush(t, s) // rotation follows the ACKs; flush waits for it
	if n := stats(t, s).Segments; n != 1 {
		t.Fatalf("%d segments, want 1", n)
	}
	// Lower the size while the committer is inside the batch of seq 2, between
	// its ACK and its rotation check. Lowering it right after flush could let the
	// rotation check after flush's own (empty) batch rotate first, and then seq 2
	// would go to a second segment and rotate to a third.
	acked, release := make(chan struct{}), make(chan struct{})
	var ackErr error
	go s.Submit(batchOf("c", 2), waiterFunc(func(_ []uint64, err error) { // the caller commits: it waits in the Waiter
		ackErr = err
		close(acked)
		<-release
	}))
	recv(t, acked, "the ACK of seq 2")
	if ackErr != nil {
		t.Fatal(ackErr)
	}
	s.SetSegmentSize(1)
	close(release)
	flush(t, s)
	if n := stats(t, s).Segments; n != 2 {
		t.Errorf("%d segments after lowering the size, want 2", n)
	}
}

// TestTwoSpoolsShareADirectory runs two spools (standing in for the old and new
// process of an upgrade) on one directory with the same frozen clock, rotating
// at every batch: each segment is written by one spool only.
func TestTwoSpoolsShareADirectory(t *testing.T) {
	dir := t.TempDir()
	frozen := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	now := func() time.Time { return frozen }
	a := open(t, Options{Dir: dir, SegmentSize: 1, Now: now})
	b := open(t, Options{Dir: dir, SegmentSize: 1, Now: now})

	want := map[key]bool{}
	var wg sync.WaitGroup
	for _, sp := range []struct {
		s      *Spool
		client string
	}{{a, "A"}, {b, "B"}} {
		for i := range uint64(50) {
			want[key{sp.client, i}] = true
		}
		wg.Go(func() {
			for i := range uint64(50) {
				w := newWaiter()
				sp.s.Submit(batchOf(sp.client, i), w)
				if err := w.wait(t); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []*Spool{a, b} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	names := segmentFiles(t, dir)
	if created := stats(t, a).Segments + stats(t, b).Segments; uint64(len(names)) != created-2 {
		t.Errorf("%d files for %d segments created (two empty ones removed)", len(names), created)
	}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got := parseLines(t, data)
		if len(got) != 1 {
			t.Errorf("%s holds %d records, want 1 (one batch per segment)", name, len(got))
		}
	}
	exactlyOnce(t, readDir(t, dir), want)
}

// TestNameCollision stands in for another process that took the names this one
// would try next (same pid, same start time): the spool skips them with O_EXCL
// and leaves them alone.
func TestNameCollision(t *testing.T) {
	dir := t.TempDir()
	frozen := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	next := segCounter.Load()
	for i := range uint64(3) {
		name := filepath.Join(dir, SegmentName(frozen, os.Getpid(), next+i))
		if err := os.WriteFile(name, []byte("taken\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, Options{Dir: dir, Now: func() time.Time { return frozen }})
	w := newWaiter()
	s.Submit(batchOf("c", 1), w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := segmentFiles(t, dir)
	if len(names) != 4 || names[3] != SegmentName(frozen, os.Getpid(), next+3) {
		t.Fatalf("files %v", names)
	}
	for _, name := range names[:3] {
		if data, _ := os.ReadFile(filepath.Join(dir, name)); string(data) != "taken\n" {
			t.Errorf("%s was overwritten: %q", name, data)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Error("Open without a directory succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: filepath.Join(file, "spool")}); err == nil || !strings.HasPrefix(err.Error(), "spool: ") {
		t.Errorf("Open under a regular file: %v", err)
	}
	_, err := Open(Options{Dir: t.TempDir(), OpenFile: func(string) (File, error) { return nil, syscall.EACCES }})
	if !errors.Is(err, syscall.EACCES) || !strings.HasPrefix(err.Error(), "spool: create segment: ") {
		t.Errorf("Open with a failing create: %v", err)
	}
	_, err = Open(Options{Dir: t.TempDir(), OpenFile: func(string) (File, error) { return nil, fs.ErrExist }})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("Open with every name taken: %v", err)
	}
}

// TestWriteFailure: a write that fails half way (disk full) is refused, rolled
// back, logged, counted; the next batch is written normally.
func TestWriteFailure(t *testing.T) {
	fsys := &fakeFS{}
	obs := &observer{}
	core, logs := zapobserver.New(zap.ErrorLevel)
	s := openFake(t, fsys, Options{Observer: obs, Logger: zap.New(core)})

	fsys.set(func(fsys *fakeFS) {
		fsys.writeErr = func(p []byte) (int, error) { return len(p) / 2, syscall.ENOSPC }
	})
	w1 := newWaiter()
	s.Submit(batchOf("c", 1, 2), w1)
	err := w1.wait(t)
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "spool: write "+fsys.file(0).name+": ") {
		t.Fatalf("got %v, want a spool write error wrapping ENOSPC", err)
	}
	if !slices.Equal(w1.seqs, []uint64{1, 2}) {
		t.Errorf("failure told for seqs %v", w1.seqs)
	}
	if f := fsys.file(0); len(f.data) != 0 {
		t.Errorf("the failed write was not rolled back: %q", f.data)
	}
	if st := stats(t, s); st.WriteErrors != 1 || st.Batches != 0 || st.Records != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, failures, _ := obs.snapshot(); len(failures) != 1 || !errors.Is(failures[0], syscall.ENOSPC) {
		t.Errorf("observer saw failures %v", failures)
	}
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].ContextMap()["error"].(string), "no space") {
		t.Errorf("logged %v", logs.All())
	}

	fsys.set(func(fsys *fakeFS) { fsys.writeErr = nil })
	w2 := newWaiter()
	s.Submit(batchOf("c", 3), w2)
	if err := w2.wait(t); err != nil {
		t.Fatal(err)
	}
	if fsys.count() != 1 {
		t.Errorf("%d segments, want the first one kept", fsys.count())
	}
	exactlyOnce(t, parseLines(t, fsys.file(0).data), map[key]bool{{"c", 3}: true})
	if st := stats(t, s); st.WriteErrors != 1 || st.Batches != 1 || st.Records != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestWriteFailureWithoutRollback: when the failed write cannot be truncated
// away, the segment is given up (torn line last) and a new one takes the next batch.
func TestWriteFailureWithoutRollback(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	commit := func(seq uint64) error {
		w := newWaiter()
		s.Submit(batchOf("c", seq), w)
		return w.wait(t)
	}
	if err := commit(1); err != nil {
		t.Fatal(err)
	}
	fsys.set(func(fsys *fakeFS) {
		fsys.writeErr = func(p []byte) (int, error) { return 10, syscall.EIO }
		fsys.truncErr = syscall.EIO
	})
	if err := commit(2); !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
	fsys.set(func(fsys *fakeFS) { fsys.writeErr, fsys.truncErr = nil, nil })
	if err := commit(3); err != nil {
		t.Fatal(err)
	}
	if fsys.count() != 2 {
		t.Fatalf("%d segments, want 2", fsys.count())
	}
	old, cur := fsys.file(0), fsys.file(1)
	if !old.closed {
		t.Error("the abandoned segment was not closed")
	}
	good := batchOf("c", 1).Lines()
	if string(old.data) != string(good)+string(batchOf("c", 2).Lines()[:10]) {
		t.Errorf("abandoned segment holds %q", old.data)
	}
	exactlyOnce(t, parseLines(t, cur.data), map[key]bool{{"c", 3}: true})
}

func TestFsyncFailure(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{Fsync: true})
	fsys.set(func(fsys *fakeFS) { fsys.syncErr = syscall.EIO })
	w := newWaiter()
	s.Submit(batchOf("c", 1), w)
	if err := w.wait(t); !errors.Is(err, syscall.EIO) || !strings.HasPrefix(err.Error(), "spool: fsync ") {
		t.Fatalf("got %v, want a spool fsync error wrapping EIO", err)
	}
	if f := fsys.file(0); len(f.data) != 0 {
		t.Errorf("the unsynced write was not rolled back: %q", f.data)
	}
	fsys.set(func(fsys *fakeFS) { fsys.syncErr = nil })
	w = newWaiter()
	s.Submit(batchOf("c", 2), w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, parseLines(t, fsys.file(0).data), map[key]bool{{"c", 2}: true})
}

// TestNoSegment: after a segment is abandoned and a new one cannot be created
// either, batches are refused until creating works again.
func TestNoSegment(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	commit := func(seq uint64) error {
		w := newWaiter()
		s.Submit(batchOf("c", seq), w)
		return w.wait(t)
	}
	fsys.set(func(fsys *fakeFS) {
		fsys.writeErr = func(p []byte) (int, error) { return 0, syscall.EIO }
		fsys.truncErr = syscall.EIO
		fsys.openErr = func(string) error { return syscall.ENOSPC }
	})
	if err := commit(1); !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want EIO", err)
	}
	fsys.set(func(fsys *fakeFS) { fsys.writeErr, fsys.truncErr = nil, nil })
	if err := commit(2); !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "spool: create segment: ") {
		t.Fatalf("got %v, want a create error wrapping ENOSPC", err)
	}
	fsys.set(func(fsys *fakeFS) { fsys.openErr = nil })
	if err := commit(3); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.WriteErrors != 2 || st.Segments != 2 || st.Records != 1 {
		t.Errorf("stats %+v", st)
	}
	exactlyOnce(t, parseLines(t, fsys.file(1).data), map[key]bool{{"c", 3}: true})
}

// TestRotationCreateFailure: when the next segment cannot be created, the spool
// writes on to the full one rather than refusing reports.
func TestRotationCreateFailure(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{SegmentSize: 1})
	commit := func(seq uint64) {
		t.Helper()
		submitWait(t, s, batchOf("c", seq))
		flush(t, s) // the rotation attempt follows the ACK; flush waits for it
	}
	fsys.set(func(fsys *fakeFS) { fsys.openErr = func(string) error { return syscall.ENOSPC } })
	commit(1)
	commit(2)
	// Let creating work again while seq 3 is being written: right after flush,
	// the rotation check after flush's own (empty) batch could still be to come,
	// and it would create the next segment before seq 3 is written.
	g := holdNextWrite(fsys)
	w := newWaiter()
	go s.Submit(batchOf("c", 3), w) // the caller commits: it waits in the held write
	g.waitEntered(t)
	fsys.set(func(fsys *fakeFS) { fsys.openErr = nil })
	close(g.release)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	flush(t, s) // the rotation after seq 3
	if fsys.count() != 2 {
		t.Fatalf("%d segments, want 2", fsys.count())
	}
	exactlyOnce(t, parseLines(t, fsys.file(0).data), map[key]bool{{"c", 1}: true, {"c", 2}: true, {"c", 3}: true})
	if f := fsys.file(1); len(f.data) != 0 || !fsys.file(0).closed {
		t.Errorf("rotation after recovery: new segment %q, old closed %v", f.data, fsys.file(0).closed)
	}
}

func TestCloseCommitsPending(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	g := holdNextWrite(fsys)
	w1 := newWaiter()
	go s.Submit(batchOf("c", 1), w1) // the caller commits: it waits in the held write
	g.waitEntered(t)
	w2, w3 := newWaiter(), newWaiter()
	s.Submit(batchOf("c", 2), w2)
	s.Submit(batchOf("c", 3, 4), w3)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close cannot finish while the committer is held; whether it has started
	// does not matter, only that it does not return early.
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a write in progress", err)
	default:
	}
	close(g.release)
	if err := recv(t, closed, "Close returning"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*waiter{w1, w2, w3} {
		if !w.told() {
			t.Fatal("Close returned before every Waiter was told")
		}
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	f := fsys.file(0)
	if !f.closed {
		t.Error("segment not closed")
	}
	exactlyOnce(t, parseLines(t, f.data), map[key]bool{{"c", 1}: true, {"c", 2}: true, {"c", 3}: true, {"c", 4}: true})

	w := newWaiter()
	s.Submit(batchOf("c", 5), w)
	if !w.told() {
		t.Fatal("Submit after Close did not tell its Waiter at once")
	}
	if err := w.wait(t); !errors.Is(err, ingest.ErrClosed) || !slices.Equal(w.seqs, []uint64{5}) {
		t.Errorf("Submit after Close: %v %v", w.seqs, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	flush(t, s) // after Close, returns at once
}

func TestCloseRemovesAnEmptySegment(t *testing.T) {
	s := open(t, Options{})
	if n := len(segmentFiles(t, s.dir)); n != 1 {
		t.Fatalf("%d segments after Open, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if names := segmentFiles(t, s.dir); len(names) != 0 {
		t.Errorf("empty segments left behind: %v", names)
	}
}

// TestFlush checks the premise of the flush helper (Flush itself is gone):
// the Waiter of an empty batch is told only after every Submit before it, but
// possibly before the rotation that follows its batch; a second empty batch,
// submitted once the first was told, is told only after that rotation.
func TestFlush(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{SegmentSize: 1}) // rotate after every batch
	flush(t, s)                                     // nothing submitted: returns at once

	g := holdNextWrite(fsys)
	w1 := newWaiter()
	go s.Submit(batchOf("c", 1), w1) // the caller commits: it waits in the held write
	g.waitEntered(t)
	// w2 and the first sentinel go to disk in one batch, after {1}; each notes
	// how many segments exist when it is told.
	segmentsWhenTold := func(w *waiter, n *atomic.Int64) waiterFunc {
		return func(seqs []uint64, err error) {
			n.Store(int64(fsys.count()))
			w.Committed(seqs, err)
		}
	}
	var atW2, atFirst, atSecond atomic.Int64
	w2, first := newWaiter(), newWaiter()
	s.Submit(batchOf("c", 2), segmentsWhenTold(w2, &atW2))
	s.Submit(&ingest.Batch{}, segmentsWhenTold(first, &atFirst))
	if first.told() {
		t.Fatal("an empty batch was told while a write submitted before it was in progress")
	}
	close(g.release)
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	if !w1.told() || !w2.told() {
		t.Fatal("an empty batch was told before the Submits made before it")
	}
	// {1} rotated before its successor batch started; the rotation after {2} had
	// not run when the batch's Waiters were told.
	if atW2.Load() != 2 || atFirst.Load() != 2 {
		t.Errorf("segments when told: %d for seq 2, %d for the empty batch; want 2 (rotation follows the Committed calls)", atW2.Load(), atFirst.Load())
	}
	second := newWaiter()
	s.Submit(&ingest.Batch{}, segmentsWhenTold(second, &atSecond))
	if err := second.wait(t); err != nil {
		t.Fatal(err)
	}
	if atSecond.Load() != 3 {
		t.Errorf("%d segments when the second empty batch was told, want 3 (the first's batch rotated)", atSecond.Load())
	}
	// An empty batch writes nothing and is no batch in the stats.
	if st := stats(t, s); st.Batches != 2 || st.Records != 2 || st.Segments != 3 {
		t.Errorf("stats %+v, want 2 batches of 1 record and 3 segments", st)
	}
	for i := range 2 {
		if f := fsys.file(i); f.writes != 1 {
			t.Errorf("segment %d: %d writes, want 1", i, f.writes)
		}
	}

	// flush itself: it returns only after every Waiter before it was told.
	g = holdNextWrite(fsys)
	w3 := newWaiter()
	go s.Submit(batchOf("c", 3), w3) // the caller commits: it waits in the held write
	g.waitEntered(t)
	w4 := newWaiter()
	s.Submit(batchOf("c", 4), w4)
	flushed := flushing(s)
	select {
	case <-flushed:
		t.Fatal("flush returned with a write held")
	default:
	}
	close(g.release)
	recv(t, flushed, "flush returning")
	if !w3.told() || !w4.told() {
		t.Fatal("flush returned before the Waiters were told")
	}
	if n := fsys.count(); n != 5 {
		t.Errorf("%d segments after flush, want 5 (the rotations after {3} and {4} done)", n)
	}
}

type waiterFunc func([]uint64, error)

func (f waiterFunc) Committed(seqs []uint64, err error) { f(seqs, err) }

// benchJSON is a typical 256-byte report payload (the one internal/ingest's
// encoding benchmarks use).
var benchJSON = []byte(`{"host":"web-01.eu-west-1.prod","cpu":0.53,"load":[1.25,0.98,0.75],"mem":{"used":123456789,"free":987654321},` +
	`"disks":[{"dev":"sda","util":12.5},{"dev":"sdb","util":3.25}],"tags":["prod","eu-west-1","k8s"],"msg":"` +
	strings.Repeat("x", 256-214) + `"}`)

// BenchmarkSubmit measures the spool end to end on a real directory, fsync off (and on):
// parallel submitters (connections) each waiting for their ACK before sending
// more, as an agent with a window of one batch would.
func BenchmarkSubmit(b *testing.B) {
	for _, c := range []struct {
		perSubmit int
		fsync     bool // each write fsynced before its Waiters are told
	}{{1, false}, {16, false}, {16, true}} {
		perSubmit := c.perSubmit
		name := fmt.Sprintf("records=%d", perSubmit)
		if c.fsync {
			name += "/fsync"
		}
		b.Run(name, func(b *testing.B) {
			obs := &observer{}
			s, err := Open(Options{Dir: b.TempDir(), Logger: zap.NewNop(), Observer: obs, Fsync: c.fsync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var records atomic.Int64
			b.SetParallelism(32) // connections per core
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var batch ingest.Batch
				acked := make(chan struct{}, 1)
				w := waiterFunc(func([]uint64, error) { acked <- struct{}{} })
				var seq uint64
				for pb.Next() {
					batch.Reset()
					for range perSubmit {
						seq++
						batch.Add(&ingest.Record{ClientID: "bench-agent", Seq: seq, ConnID: 1, Received: time.Now(), Payload: benchJSON})
					}
					s.Submit(&batch, w)
					<-acked
					records.Add(int64(perSubmit))
				}
			})
			b.StopTimer()
			st := obs.stats()
			b.ReportMetric(float64(records.Load())/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Records)/float64(max(st.Batches, 1)), "records/batch")
		})
	}
}

func TestFsyncRealDirectory(t *testing.T) {
	s := open(t, Options{Fsync: true})
	w := newWaiter()
	s.Submit(batchOf("c", 1), w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readDir(t, s.dir), map[key]bool{{"c", 1}: true})
}

// TestBurstBufferNotRetained: a batch far larger than usual must not stay
// allocated as the spare buffer.
func TestBurstBufferNotRetained(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	var big ingest.Batch
	big.Add(&ingest.Record{ClientID: "c", Seq: 1, Payload: make([]byte, maxRetained)})
	w := newWaiter()
	s.Submit(&big, w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	if c := spareCap(t, s, fsys, 100); c > maxRetained {
		t.Errorf("spare buffer of %d bytes kept", c)
	}
	small := newWaiter()
	s.Submit(batchOf("c", 2), small)
	if err := small.wait(t); err != nil {
		t.Fatal(err)
	}
	if c := spareCap(t, s, fsys, 101); c == 0 {
		t.Error("small buffers are not kept for reuse")
	}
}

// spareCap returns the capacity of the lines buffer the last batch left behind
// as the committer's spare. The committer owns the spare, so it is read where
// the spool hands it over: the next batch (a probe record, seq) swaps it in as
// the pending buffer, and while the committer is held inside the probe's write
// nothing is submitted into it.
func spareCap(t *testing.T, s *Spool, fsys *fakeFS, seq uint64) int {
	t.Helper()
	g := holdNextWrite(fsys)
	probe := newWaiter()
	go s.Submit(batchOf("probe", seq), probe) // the caller commits: it waits in the held write
	g.waitEntered(t)
	s.mu.Lock()
	c, empty := cap(s.pending.lines), len(s.pending.entries) == 0
	s.mu.Unlock()
	close(g.release)
	if err := probe.wait(t); err != nil {
		t.Fatal(err)
	}
	if !empty {
		t.Fatal("something was submitted into the spare buffer while the probe was written")
	}
	return c
}
