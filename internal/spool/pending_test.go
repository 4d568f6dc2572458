package spool

import (
	"errors"
	"testing"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// stuckWithFullPending opens a spool whose committer is held inside the write of
// seq 0, with MaxPending bytes (seqs 1..3) waiting behind it, and starts a fourth
// Submit (seq 4), returning once that Submit is waiting for room.
func stuckWithFullPending(t *testing.T) (s *Spool, g *gate, ws []*waiter, returned chan struct{}) {
	fsys := &fakeFS{}
	s = openFake(t, fsys, Options{MaxPending: 3 * len(batchOf("c", 1).Lines())})
	g = holdNextWrite(fsys)
	ws = []*waiter{newWaiter(), newWaiter(), newWaiter(), newWaiter(), newWaiter()}
	go s.Submit(batchOf("c", 0), ws[0]) // the caller commits: it waits in the held write
	g.waitEntered(t)                    // the committer holds {0}; nothing is pending
	for seq := uint64(1); seq <= 3; seq++ {
		s.Submit(batchOf("c", seq), ws[seq]) // up to MaxPending: no wait
	}
	returned = make(chan struct{})
	go func() {
		s.Submit(batchOf("c", 4), ws[4])
		close(returned)
	}()
	testutil.Eventually(t, waitTimeout, func() bool { return stats(t, s).Throttled == 1 }, "the fourth Submit to wait for room")
	// The committer is held, so nothing can make room: the Submit is still waiting.
	select {
	case <-returned:
		t.Fatal("Submit returned while MaxPending bytes were pending")
	default:
	}
	return s, g, ws, returned
}

func TestMaxPendingPushesBack(t *testing.T) {
	s, g, ws, returned := stuckWithFullPending(t)
	close(g.release)
	recv(t, returned, "the throttled Submit returning")
	for seq, w := range ws {
		if err := w.wait(t); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	flush(t, s)
	if st := stats(t, s); st.Records != 5 || st.Throttled != 1 {
		t.Fatalf("stats %+v, want 5 records and 1 throttled Submit", st)
	}
	// The throttled Submit told its Waiter before it blocked (a connection then lets
	// its held ACKs out); the others did not block.
	for seq, w := range ws {
		w.mu.Lock()
		waits := w.waits
		w.mu.Unlock()
		if want := map[bool]int{true: 1}[seq == 4]; waits != want {
			t.Errorf("seq %d: SubmitWaits called %d times, want %d", seq, waits, want)
		}
	}
}

func TestCloseReleasesAThrottledSubmit(t *testing.T) {
	s, g, ws, returned := stuckWithFullPending(t)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close refuses the waiting Submit at once, though the committer is still held.
	recv(t, returned, "the throttled Submit returning")
	if err := ws[4].wait(t); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("throttled Submit after Close: %v, want ErrClosed", err)
	}
	close(g.release)
	if err := recv(t, closed, "Close returning"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// What was submitted before Close is committed.
	for seq, w := range ws[:4] {
		if err := w.wait(t); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
}
