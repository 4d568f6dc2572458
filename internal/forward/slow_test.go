package forward

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/spool"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

// A stream that takes fewer records per publish timeout than one publish
// carries: the forwarder keeps what was acknowledged and publishes fewer at once,
// so it gets through a spool that a fixed batch would publish again and again
// without getting ahead (the link to the broker stays the bottleneck for every
// copy).
func TestSlowStreamForwardsEverything(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	const total = 4000
	dir := t.TempDir()
	appendRecords(t, filepath.Join(dir, spool.SegmentName(time.Now(), 1, 0)), "a", 1, total, time.Now())
	// A publish is about 190 bytes on the wire: 128 KiB/s is ~700 a second, and a
	// 1 s timeout acknowledges a fraction of the first publish of 4,000.
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
	t.Logf("%d records forwarded in %s: %d acknowledged as duplicates, %d publishes timed out", fwd, time.Since(start).Round(time.Millisecond), dups, failed)
	if failed == 0 {
		t.Error("no publish timed out: the test did not make the stream slower than a publish")
	}
	byID, n := ns.Messages("REPORTS")
	if n != total || len(byID) != total {
		t.Fatalf("the stream holds %d messages, %d distinct; want %d once each", n, len(byID), total)
	}
}

func TestPace(t *testing.T) {
	p := pace{lines: 4096, max: 4096, timeout: 4 * time.Second}
	step := func(what string, f func(), want int) {
		t.Helper()
		f()
		if p.lines != want {
			t.Fatalf("after %s: %d records per publish, want %d", what, p.lines, want)
		}
	}
	step("a timeout after 1,000 acknowledged", func() { p.timedOut(1000) }, 500)
	step("a timeout after 300", func() { p.timedOut(300) }, 150)
	step("a timeout with none acknowledged", func() { p.timedOut(0) }, 64)
	step("a timeout at the floor", func() { p.timedOut(0) }, 64)
	step("a success within a quarter of the timeout", func() { p.succeeded(time.Second) }, 128)
	step("a success between a quarter and half", func() { p.succeeded(1500 * time.Millisecond) }, 128)
	step("a success slower than half", func() { p.succeeded(3 * time.Second) }, 64)
	for range 10 {
		p.succeeded(time.Millisecond)
	}
	if p.lines != 4096 {
		t.Fatalf("quick successes grew it to %d, want the most, 4096", p.lines)
	}
	small := pace{lines: 16, max: 16}
	small.timedOut(0)
	small.succeeded(time.Hour) // no timeout known: every success doubles
	if small.lines != 16 {
		t.Fatalf("MaxLines 16: %d after a timeout and a success, want 16 (the floor is MaxLines when lower)", small.lines)
	}
}
