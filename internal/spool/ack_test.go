package spool

import (
	"sync/atomic"
	"testing"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// With fsync, the next batch is written and fsynced while the Waiters of the last
// one are still being told, and every Waiter is told after its own fsync and in
// the order written.
func TestFsyncOverlapsTheAcks(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{Fsync: true})
	entered, release := make(chan struct{}), make(chan struct{})
	var syncsWhenTold atomic.Int64
	w1 := newWaiter()
	s.Submit(batchOf("c", 1), waiterFunc(func(seqs []uint64, err error) {
		syncsWhenTold.Store(int64(fsys.file(0).syncs))
		close(entered)
		<-release // the acker is held inside batch 1's Waiter
		w1.Committed(seqs, err)
	}))
	recv(t, entered, "batch 1's Waiter told")
	if n := syncsWhenTold.Load(); n != 1 {
		t.Fatalf("batch 1's Waiter told after %d fsyncs, want 1", n)
	}
	w2 := newWaiter()
	s.Submit(batchOf("c", 2), w2)
	testutil.Eventually(t, waitTimeout, func() bool { f := fsys.file(0); return f.writes == 2 && f.syncs == 2 },
		"batch 2 written and fsynced while batch 1's Waiter is held")
	if w2.told() {
		t.Fatal("batch 2's Waiter told before batch 1's")
	}
	close(release)
	if err := w2.wait(t); err != nil {
		t.Fatal(err)
	}
	if err := w1.wait(t); err != nil {
		t.Fatal(err)
	}
}
