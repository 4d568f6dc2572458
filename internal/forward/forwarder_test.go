package forward

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// fakeStream is a Publisher that keeps one copy per Nats-Msg-Id, as JetStream's
// duplicate window does, and fails while down.
type fakeStream struct {
	mu        sync.Mutex
	down      bool
	published map[string]int // id -> times published
	stored    int
	// stall, when > 0, makes the next publish of more lines acknowledge only
	// that many and then time out (stalledError), once.
	stall int
	sizes []int // lines per publish, in order
	// before, when set, runs at the start of the i-th publish (from 0), without
	// the lock: it may block.
	before func(i int)
}

// stalledError is what a Publisher returns when the stream stopped acknowledging.
type stalledError struct{}

func (stalledError) Error() string { return "no acknowledgement for the publish timeout" }
func (stalledError) Timeout() bool { return true }

func newFakeStream() *fakeStream { return &fakeStream{published: map[string]int{}} }

func (s *fakeStream) Publish(_ context.Context, lines [][]byte) (acked, dups int, err error) {
	s.mu.Lock()
	before, i := s.before, len(s.sizes)
	s.mu.Unlock()
	if before != nil {
		before(i)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return 0, 0, errors.New("down")
	}
	s.sizes = append(s.sizes, len(lines))
	var stalled error
	if s.stall > 0 && len(lines) > s.stall {
		lines, stalled, s.stall = lines[:s.stall], stalledError{}, 0
	}
	for _, l := range lines {
		id, seq, ok := ingest.ParseKey(l, nil)
		if !ok {
			return 0, 0, fmt.Errorf("not a record: %q", l)
		}
		k := fmt.Sprintf("%s:%d", id, seq)
		if s.published[k] > 0 {
			dups++
		} else {
			s.stored++
		}
		s.published[k]++
	}
	return len(lines), dups, stalled
}

func (s *fakeStream) setDown(down bool) { s.mu.Lock(); s.down = down; s.mu.Unlock() }
func (s *fakeStream) count() int        { s.mu.Lock(); defer s.mu.Unlock(); return s.stored }

type lagObserver struct {
	mu                sync.Mutex
	records           int64
	age               time.Duration
	fwd, dups, failed int
}

func (o *lagObserver) Forwarded(n, dups int) { o.mu.Lock(); o.fwd += n; o.dups += dups; o.mu.Unlock() }
func (o *lagObserver) Failed(error)          { o.mu.Lock(); o.failed++; o.mu.Unlock() }
func (o *lagObserver) counts() (fwd, dups, failed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fwd, o.dups, o.failed
}
func (o *lagObserver) Lag(r int64, a time.Duration) {
	o.mu.Lock()
	o.records, o.age = r, a
	o.mu.Unlock()
}
func (o *lagObserver) lag() (int64, time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.records, o.age
}

func appendRecords(t *testing.T, path, client string, from, n int, at time.Time) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < from+n; i++ {
		fmt.Fprintf(f, `{"client_id":%q,"seq":%d,"conn_id":1,"received":%q,"payload":{"i":%d}}`+"\n", client, i, at.UTC().Format(time.RFC3339Nano), i)
	}
}

// run starts Run; the returned stop cancels it and waits for it.
func run(t *testing.T, o Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestForwardsEverySegmentOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	// pid 1 exited: its segments are closed; pid 2 runs: its newest segment grows.
	old := filepath.Join(dir, spool.SegmentName(start, 1, 0))
	cur := filepath.Join(dir, spool.SegmentName(start.Add(time.Second), 2, 1))
	appendRecords(t, old, "a", 0, 1000, start)
	appendRecords(t, cur, "b", 0, 500, start)
	alive := func(pid int) bool { return pid == 2 }
	st := newFakeStream()
	obs := &lagObserver{}
	o := Options{Dir: dir, Publisher: st, Alive: alive, Observer: obs, MaxLines: 64, ReadSize: 4096, Poll: time.Millisecond, RetryAfter: time.Millisecond}
	stop := run(t, o)
	testutil.Eventually(t, 10*time.Second, func() bool { return st.count() == 1500 }, "1500 records forwarded")
	testutil.Eventually(t, 10*time.Second, func() bool { r, a := obs.lag(); return r == 0 && a == 0 }, "no lag once caught up")
	stop()

	curUnsent, curSent := Unsent(dir)(filepath.Base(cur))
	if oldUnsent, _ := Unsent(dir)(filepath.Base(old)); !curUnsent || oldUnsent {
		t.Fatal("retention may remove the exited process's forwarded segment only")
	}
	if fi, err := os.Stat(cur); err != nil || curSent != fi.Size() {
		t.Fatalf("the current segment's sent bytes %d, want its size (%v, %v)", curSent, fi.Size(), err)
	}

	// NATS down while the current segment grows: the lag is measured; then a
	// restart (a new Run, as after a crash or an upgrade) forwards the rest once.
	st.setDown(true)
	received := time.Now().Add(-time.Minute)
	appendRecords(t, cur, "b", 500, 300, received)
	obs2 := &lagObserver{}
	o.Observer = obs2
	stop = run(t, o)
	testutil.Eventually(t, 10*time.Second, func() bool { r, a := obs2.lag(); return r == 300 && a >= time.Minute }, "lag of 300 records, a minute old")
	// A torn last line (a crash mid-write) is never forwarded.
	f, _ := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"client_id":"b","seq":9999`)
	f.Close()
	st.setDown(false)
	testutil.Eventually(t, 10*time.Second, func() bool { return st.count() == 1800 }, "1800 records forwarded")
	stop()
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, n := range st.published {
		if n > 1 {
			t.Errorf("%s published %d times: the position did not survive the restart", id, n)
		}
	}
	if st.published["b:9999"] != 0 {
		t.Error("a torn last line was forwarded")
	}
}

func TestOneForwarderPerDirectory(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, spool.SegmentName(time.Now(), 7, 0))
	appendRecords(t, seg, "a", 0, 10, time.Now())
	st1, st2 := newFakeStream(), newFakeStream()
	alive := func(int) bool { return true }
	stop1 := run(t, Options{Dir: dir, Publisher: st1, Alive: alive, Poll: time.Millisecond})
	testutil.Eventually(t, 10*time.Second, func() bool { return st1.count() == 10 }, "the first forwarder forwards")
	stop2 := run(t, Options{Dir: dir, Publisher: st2, Alive: alive, Poll: time.Millisecond})
	appendRecords(t, seg, "a", 10, 10, time.Now())
	testutil.Eventually(t, 10*time.Second, func() bool { return st1.count() == 20 }, "the first forwarder keeps the directory")
	if st2.count() != 0 {
		t.Fatal("a second forwarder published while the first held the lock")
	}
	stop1() // the old process's drain: the lock and the position pass on
	appendRecords(t, seg, "a", 20, 10, time.Now())
	testutil.Eventually(t, 10*time.Second, func() bool { return st2.count() == 10 }, "the second forwarder takes over where the first stopped")
	stop2()
}

func TestUnknownPositionVersionKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, PositionFile), []byte(`{"version":2,"done":["x"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if unsent, _ := Unsent(dir)("x"); !unsent {
		t.Fatal("a position this hawk cannot read must keep every segment")
	}
	err := Run(context.Background(), Options{Dir: dir, Publisher: newFakeStream()})
	if err == nil {
		t.Fatal("Run started on a position of an unknown version")
	}
}
