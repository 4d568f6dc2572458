package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// waitTimeout bounds every wait in these tests: long enough for a loaded CI
// machine under -race, short enough that a hang fails instead of stalling.
const waitTimeout = 10 * time.Second

// waiter records Committed calls; done is closed by the first.
type waiter struct {
	mu    sync.Mutex
	calls int
	waits int // SubmitWaits calls: its Submit blocked for room
	seqs  []uint64
	err   error
	done  chan struct{}
}

func newWaiter() *waiter { return &waiter{done: make(chan struct{})} }

func (w *waiter) SubmitWaits() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits++
}

func (w *waiter) Committed(seqs []uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.calls == 1 {
		w.seqs = append([]uint64(nil), seqs...)
		w.err = err
		close(w.done)
	}
}

// wait returns the error of the first Committed call, failing t if none comes in time.
func (w *waiter) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(waitTimeout):
		t.Fatal("Committed was not called in time")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *waiter) told() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *waiter) callCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

// observer records what the spool reports. open installs one when a test gives
// none, so that stats can tell what the spool did.
type observer struct {
	mu        sync.Mutex
	batches   []batchObs
	failures  []error
	opened    []string
	latRecs   int // records reported by AckLatency
	throttled int // Throttled calls
}

type batchObs struct {
	records, bytes int
	write, fsync   time.Duration
}

func (o *observer) BatchWritten(records, bytes int, write, fsync time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches = append(o.batches, batchObs{records, bytes, write, fsync})
}

func (o *observer) WriteFailed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures = append(o.failures, err)
}

func (o *observer) SegmentOpened(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened = append(o.opened, name)
}

func (o *observer) Throttled() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.throttled++
}

func (o *observer) AckLatency(d time.Duration, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d < 0 {
		panic("negative ack latency")
	}
	o.latRecs += n
}

func (o *observer) ackLatencyRecords() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.latRecs
}

func (o *observer) snapshot() (batches []batchObs, failures []error, opened []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]batchObs(nil), o.batches...), append([]error(nil), o.failures...), append([]string(nil), o.opened...)
}

// spoolStats are running totals since Open, as the observer saw them.
type spoolStats struct {
	Segments    uint64 // segments created (SegmentOpened)
	Bytes       uint64 // bytes written in successful batches
	Batches     uint64 // successful batch writes (failed ones count in WriteErrors)
	Records     uint64 // records in successful batches
	WriteErrors uint64 // batches refused because a write, fsync or segment creation failed
	Throttled   uint64 // Submit calls that waited because MaxPending bytes were pending
}

func (o *observer) stats() spoolStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := spoolStats{
		Segments:    uint64(len(o.opened)),
		Batches:     uint64(len(o.batches)),
		WriteErrors: uint64(len(o.failures)),
		Throttled:   uint64(o.throttled),
	}
	for _, b := range o.batches {
		st.Records += uint64(b.records)
		st.Bytes += uint64(b.bytes)
	}
	return st
}

// stats returns what s's observer (the test observer open installs, or the one
// the test gave) has seen so far. The observer is called on the committer
// goroutine: what a batch reports is seen once a Waiter of that batch was told
// (BatchWritten, WriteFailed), or once flush returned (SegmentOpened of a rotation).
func stats(t testing.TB, s *Spool) spoolStats {
	t.Helper()
	o, ok := s.obs.(*observer)
	if !ok {
		t.Fatalf("the spool's observer is a %T, not the test observer", s.obs)
	}
	return o.stats()
}

// fakeFS is an in-memory directory whose calls can be made to fail or block.
// Its hooks run with fs.mu held unless said otherwise.
type fakeFS struct {
	mu       sync.Mutex
	files    []*fakeFile
	dirSyncs int
	// openErr, when set, is asked before a file is created.
	openErr func(name string) error
	// writeErr, when set, is asked before a write; a non-nil error fails the write
	// after n of its bytes reached the file.
	writeErr func(p []byte) (n int, err error)
	syncErr  error
	truncErr error
	// beforeWrite, when set, runs at the start of every Write without fs.mu held,
	// so it may block to hold the committer inside a write.
	beforeWrite func()
}

type fakeFile struct {
	fs     *fakeFS
	name   string
	data   []byte
	writes int
	syncs  int
	closed bool
}

func (fsys *fakeFS) open(name string) (File, error) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.openErr != nil {
		if err := fsys.openErr(name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	for _, f := range fsys.files {
		if f.name == name {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
		}
	}
	f := &fakeFile{fs: fsys, name: name}
	fsys.files = append(fsys.files, f)
	return f, nil
}

func (fsys *fakeFS) syncDir(string) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.dirSyncs++
	return nil
}

func (fsys *fakeFS) remove(name string) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for i, f := range fsys.files {
		if f.name == name {
			fsys.files = append(fsys.files[:i], fsys.files[i+1:]...)
			return nil
		}
	}
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

func (fsys *fakeFS) set(f func(fsys *fakeFS)) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	f(fsys)
}

// file returns a copy of the i-th file created (and still present).
func (fsys *fakeFS) file(i int) fakeFile {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	f := *fsys.files[i]
	f.data = append([]byte(nil), f.data...)
	return f
}

func (fsys *fakeFS) count() int {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return len(fsys.files)
}

func (f *fakeFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	hook := f.fs.beforeWrite
	f.fs.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	f.writes++
	if f.fs.writeErr != nil {
		if n, err := f.fs.writeErr(p); err != nil {
			f.data = append(f.data, p[:n]...)
			return n, err
		}
	}
	f.data = append(f.data, p...)
	return len(p), nil
}

func (f *fakeFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.syncs++
	return f.fs.syncErr
}

func (f *fakeFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.truncErr != nil {
		return f.fs.truncErr
	}
	f.data = f.data[:size]
	return nil
}

func (f *fakeFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}

func (f *fakeFile) Name() string { return f.name }

// gate holds the committer inside its next write until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// holdNextWrite makes the next write on fsys block until the returned gate is released.
func holdNextWrite(fsys *fakeFS) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	fsys.set(func(fsys *fakeFS) {
		fsys.beforeWrite = func() {
			first := false
			g.once.Do(func() { first = true })
			if first {
				close(g.entered)
				<-g.release
			}
		}
	})
	return g
}

// recv returns what ch delivers (the zero value once it is closed), failing t if
// nothing comes in time; what names the awaited event in the failure.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not happen in time", what)
		panic("unreachable")
	}
}

func (g *gate) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the committer did not start writing in time")
	}
}

// openFake opens a spool on fsys (the directory is real but stays empty).
func openFake(t testing.TB, fsys *fakeFS, opts Options) *Spool {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.OpenFile = fsys.open
	opts.SyncDir = fsys.syncDir
	opts.Remove = fsys.remove
	return open(t, opts)
}

func open(t testing.TB, opts Options) *Spool {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	if opts.Observer == nil {
		opts.Observer = &observer{}
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// flush returns once every Waiter of a Submit made before it has been told
// (committed or failed) and the committer has finished the work that follows
// those Committed calls (the rotation check after a batch). It submits an empty
// batch and waits for its Waiter, twice: the first is told once every earlier
// Submit was (they are in its batch or an earlier one), but possibly in the same
// batch, before that batch's rotation; the second is submitted after the first
// was told, so it lands in a later batch, which the committer starts only after
// finishing the first's. After Close both are told at once (with ErrClosed).
//
// What flush does not wait for is the end of the second empty batch itself: its
// rotation check and the committer's bookkeeping (the spare buffer) may still be
// running when flush returns. That check writes nothing and rotates only a
// segment already full (one whose rotation failed, or after SetSegmentSize
// lowered the size), so a test that changes what rotation does (the size, a
// failing create) does it while the committer is held inside a later batch, not
// right after flush. An empty batch counts as a Submit: with MaxPending bytes
// pending it waits for room like any other (and is counted as Throttled).
func flush(t testing.TB, s *Spool) {
	t.Helper()
	recv(t, flushing(s), "flush returning")
}

// flushing does what flush does on a goroutine of its own, and closes the
// returned channel when flush would return.
func flushing(s *Spool) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 {
			w := newWaiter()
			s.Submit(&ingest.Batch{}, w)
			<-w.done // an error (a failed batch, ErrClosed) still means told
		}
	}()
	return done
}

// submitWait submits b and waits for its Waiter, failing t on an error.
func submitWait(t testing.TB, s *Spool, b *ingest.Batch) {
	t.Helper()
	w := newWaiter()
	s.Submit(b, w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
}

// batchOf encodes one record per seq for client, as a connection would.
func batchOf(client string, seqs ...uint64) *ingest.Batch {
	b := &ingest.Batch{}
	for _, seq := range seqs {
		addRecord(b, client, seq)
	}
	return b
}

// addRecord adds the record batchOf makes for (client, seq) to b.
func addRecord(b *ingest.Batch, client string, seq uint64) {
	b.Add(&ingest.Record{
		ClientID: client, Seq: seq, ConnID: 7,
		Received: time.Date(2026, 11, 23, 8, 0, 0, int(seq), time.UTC),
		Payload:  fmt.Appendf(nil, `{"n":%d}`, seq),
	})
}

// line is a spool line decoded.
type line struct {
	ClientID   string          `json:"client_id"`
	Seq        uint64          `json:"seq"`
	ConnID     uint64          `json:"conn_id"`
	Received   time.Time       `json:"received"`
	Payload    json.RawMessage `json:"payload"`
	PayloadB64 *string         `json:"payload_b64"`
}

// parseLines decodes data, failing t unless it is whole lines of JSON.
func parseLines(t testing.TB, data []byte) []line {
	t.Helper()
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("data does not end in a newline: %q", data[max(0, len(data)-80):])
	}
	var out []line
	for l := range bytes.Lines(data) {
		var v line
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

// segmentFiles returns the names of the segment files in dir, sorted.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(segs))
	for i, seg := range segs {
		names[i] = seg.Name
	}
	return names
}

// readDir decodes every segment in dir, in name order.
func readDir(t testing.TB, dir string) []line {
	t.Helper()
	var out []line
	for _, name := range segmentFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseLines(t, data)...)
	}
	return out
}

// key identifies a report.
type key struct {
	client string
	seq    uint64
}

// exactlyOnce fails t unless got holds every key of want once and nothing else.
func exactlyOnce(t testing.TB, got []line, want map[key]bool) {
	t.Helper()
	seen := make(map[key]int, len(got))
	for _, l := range got {
		k := key{l.ClientID, l.Seq}
		seen[k]++
		if !want[k] {
			t.Errorf("unexpected record %v", k)
		}
	}
	for k := range want {
		if n := seen[k]; n != 1 {
			t.Errorf("record %v written %d times, want once", k, n)
		}
	}
}
