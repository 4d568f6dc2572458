package forward

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

// A stream that takes fewer records per publish timeout than one publish
// carries, through a slow link: the forwarder waits for what is in the stream's
// queue instead of publishing it again, and publishes fewer at once. Before, it
// published the same records again and again over the link that was the
// bottleneck, and never got ahead.
func TestSlowStreamForwardsEverything(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	const total = 4000
	dir := t.TempDir()
	appendRecords(t, filepath.Join(dir, spool.SegmentName(time.Now(), 1, 0)), "a", 1, total, time.Now())
	// A publish is about 190 bytes on the wire: 128 KiB/s is ~700 a second, and a
	// publish of 4,000 takes the stream about 6 s, six times the timeout.
	const timeout = time.Second
	pub, err := jetstream.NewPublisher(jetstream.Options{URLs: ns.Throttle(128 << 10), Stream: "REPORTS", Subject: "hawk.reports.<client_id>",
		PublishTimeout: timeout, RetryHorizon: 2 * time.Minute, RequireDurable: true, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	obs := &lagObserver{}
	start := time.Now()
	stop := run(t, Options{Dir: dir, Publisher: pub, Observer: obs, Alive: func(int) bool { return false },
		Poll: 10 * time.Millisecond, RetryAfter: 100 * time.Millisecond, PublishTimeout: timeout})
	testutil.Eventually(t, 2*time.Minute, func() bool { fwd, _, _ := obs.counts(); return fwd >= total }, "every record forwarded")
	stop()
	fwd, dups, failed := obs.counts()
	t.Logf("%d records forwarded in %s: %d acknowledged as duplicates, %d publishes failed", fwd, time.Since(start).Round(time.Millisecond), dups, failed)
	if dups != 0 || failed != 0 {
		t.Errorf("%d records published again, %d publishes failed, from a stream that was slow but acknowledging; want none", dups, failed)
	}
	byID, n := ns.Messages("REPORTS")
	if n != total || len(byID) != total {
		t.Fatalf("the stream holds %d messages, %d distinct; want %d once each", n, len(byID), total)
	}
}

// A publish that stalls after some of its records were acknowledged: those stay
// forwarded, only the rest is published again, and in a smaller publish.
func TestStalledPublishKeepsWhatWasAcked(t *testing.T) {
	dir := t.TempDir()
	appendRecords(t, filepath.Join(dir, spool.SegmentName(time.Now(), 1, 0)), "a", 1, 1000, time.Now())
	st := newFakeStream()
	st.stall = 300
	obs := &lagObserver{}
	stop := run(t, Options{Dir: dir, Publisher: st, Observer: obs, Alive: func(int) bool { return false },
		Poll: time.Millisecond, RetryAfter: time.Millisecond, MaxLines: 1000, PublishTimeout: time.Hour})
	testutil.Eventually(t, 10*time.Second, func() bool { return st.count() == 1000 }, "every record forwarded")
	stop()
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, n := range st.published {
		if n != 1 {
			t.Errorf("%s published %d times, want once: what the stream acknowledged before the stall was published again", id, n)
		}
	}
	// 256 to start, 512 after a quick one; that one stalls after 300.
	if len(st.sizes) < 3 || st.sizes[1] != 512 || st.sizes[2] != 150 {
		t.Errorf("publishes of %v records, want 256, 512, then 150 (half of the 300 acknowledged before the stall)", st.sizes)
	}
	if _, _, failed := obs.counts(); failed != 1 {
		t.Errorf("%d failures counted, want the stall's 1", failed)
	}
}

// A read of many publishes (a slow stream) saves the position between them, not
// only once the read is done.
func TestPositionSavedWithinARead(t *testing.T) {
	dir := t.TempDir()
	seg := spool.SegmentName(time.Now(), 1, 0)
	appendRecords(t, filepath.Join(dir, seg), "a", 1, 100, time.Now())
	st := newFakeStream()
	held, release := make(chan struct{}), make(chan struct{})
	st.before = func(i int) {
		if i == 4 {
			close(held)
			<-release
		}
	}
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	stop := run(t, Options{Dir: dir, Publisher: st, Alive: func(int) bool { return false }, Now: now,
		Poll: time.Millisecond, MaxLines: 10, PublishTimeout: time.Hour})
	// Registered after run's: on a failure below, the held publish is let go
	// before run's cleanup waits for the forwarder to stop.
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the fifth publish did not start")
	}
	pos, err := loadPosition(dir)
	if err != nil {
		t.Fatal(err)
	}
	let()
	testutil.Eventually(t, 10*time.Second, func() bool { return st.count() == 100 }, "every record forwarded")
	stop()
	data, err := os.ReadFile(filepath.Join(dir, seg))
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	for _, l := range splitLines(data)[:40] {
		want += int64(len(l))
	}
	if got := pos.Offsets[seg]; got != want {
		t.Fatalf("position during the fifth publish of one read: %d bytes, want %d (the four publishes acknowledged before it)", got, want)
	}
}

func TestPace(t *testing.T) {
	p := newPace(4096, 4*time.Second)
	step := func(what string, f func(), want int) {
		t.Helper()
		f()
		if p.lines != want {
			t.Fatalf("after %s: %d records per publish, want %d", what, p.lines, want)
		}
	}
	step("nothing", func() {}, 256)
	step("a success within a quarter of the timeout", func() { p.succeeded(256, 0, time.Second) }, 512)
	step("a success between a quarter and half", func() { p.succeeded(512, 0, 1500*time.Millisecond) }, 512)
	step("a success slower than half", func() { p.succeeded(512, 0, 3*time.Second) }, 256)
	step("a timeout after 300 acknowledged", func() { p.timedOut(300) }, 128)
	step("a timeout with none acknowledged", func() { p.timedOut(0) }, 64)
	step("a timeout at the floor", func() { p.timedOut(0) }, 64)
	step("a quick success of duplicates", func() { p.succeeded(64, 40, time.Millisecond) }, 64)
	step("a quick success of new records", func() { p.succeeded(64, 20, time.Millisecond) }, 128)
	for range 10 {
		p.succeeded(p.lines, 0, time.Millisecond)
	}
	if p.lines != 4096 {
		t.Fatalf("quick successes grew it to %d, want the most, 4096", p.lines)
	}
	small := newPace(16, 0)
	small.timedOut(0)
	small.succeeded(16, 0, time.Hour) // no timeout known: every success doubles
	if small.lines != 16 {
		t.Fatalf("MaxLines 16: %d after a timeout and a success, want 16 (the floor is MaxLines when lower)", small.lines)
	}
}
