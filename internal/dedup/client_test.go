package dedup

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

func newTable(t testing.TB, window, maxClients int) *Table {
	t.Helper()
	tb, err := New(Options{Window: window, MaxClients: maxClients})
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	return tb
}

// answers records what a Waiter was told.
type answers struct {
	mu  sync.Mutex
	got map[uint64][]error
}

func (a *answers) Answer(seq uint64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.got == nil {
		a.got = map[uint64][]error{}
	}
	a.got[seq] = append(a.got[seq], err)
}

func (a *answers) of(seq uint64) []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[seq]
}

func check(t *testing.T, c *Client, seq uint64, w Waiter, want Verdict) {
	t.Helper()
	if got := c.Check(seq, w); got != want {
		t.Fatalf("Check(%d) = %s, want %s", seq, got, want)
	}
}

func TestStorePendingDurable(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	check(t, c, 1000, &w, Store)
	check(t, c, 1000, &w, Pending) // the same report on a second connection
	check(t, c, 1001, &w, Store)
	if n := len(w.of(1000)); n != 0 {
		t.Fatalf("waiter answered before the commit: %v", w.of(1000))
	}
	c.Committed([]uint64{1000, 1001}, nil)
	if got := w.of(1000); len(got) != 1 || got[0] != nil {
		t.Fatalf("waiter for 1000 got %v, want one nil (ACK)", got)
	}
	check(t, c, 1000, &w, Durable)
	check(t, c, 1001, &w, Durable)
	if d := tb.Duplicates(); d != 3 {
		t.Fatalf("Duplicates() = %d, want 3", d)
	}
}

func TestFailedCommitAnswersPendingAndForgets(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	boom := errors.New("disk full")
	check(t, c, 7, &w, Store)
	check(t, c, 7, &w, Pending)
	c.Committed([]uint64{7}, boom)
	if got := w.of(7); len(got) != 1 || !errors.Is(got[0], boom) {
		t.Fatalf("waiter got %v, want the commit's error", got)
	}
	// Not stored: the resend is stored.
	check(t, c, 7, &w, Store)
	c.Committed([]uint64{7}, nil)
	check(t, c, 7, &w, Durable)
}

func TestWindowEdges(t *testing.T) {
	const W = 64
	tb := newTable(t, W, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	const hi = 1 << 40
	for _, s := range []uint64{hi - W + 1, hi - 1, hi} {
		check(t, c, s, &w, Store)
	}
	c.Committed([]uint64{hi - W + 1, hi - 1, hi}, nil)
	check(t, c, hi-W+1, &w, Durable) // the oldest seq still in the window
	check(t, c, hi-W, &w, Store)     // just below it: unknown, stored
	check(t, c, hi-W, &w, Store)     // and not tracked: stored again
	c.Committed([]uint64{hi - W, hi - W}, nil)
	check(t, c, hi-W, &w, Store)
	// Moving up by one forgets exactly the oldest.
	check(t, c, hi+1, &w, Store)
	check(t, c, hi-W+1, &w, Store)
	check(t, c, hi-1, &w, Durable)
	// A jump by the window or more forgets everything.
	check(t, c, hi+1+W, &w, Store)
	check(t, c, hi, &w, Store)
	check(t, c, hi+1+W, &w, Pending)
}

func TestWindowExtremeSeqs(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	for _, s := range []uint64{0, 1, 63} {
		check(t, c, s, &w, Store)
		c.Committed([]uint64{s}, nil)
		check(t, c, s, &w, Durable)
	}
	check(t, c, ^uint64(0), &w, Store) // a jump to the largest seq
	c.Committed([]uint64{^uint64(0)}, nil)
	check(t, c, ^uint64(0), &w, Durable)
	check(t, c, 0, &w, Store)
}

// A step to the largest seq from within the window ends (the window moves by
// distance; a loop up to it would wrap).
func TestWindowStepToLargestSeq(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	check(t, c, ^uint64(0)-3, &w, Store)
	c.Committed([]uint64{^uint64(0) - 3}, nil)
	check(t, c, ^uint64(0), &w, Store)
	check(t, c, ^uint64(0)-3, &w, Durable)
	check(t, c, ^uint64(0)-1, &w, Store)
}

// A pending seq pushed out of the window by later ones stays answerable: its
// waiter gets the commit's outcome, and nothing is miscounted.
func TestPendingPushedOutOfTheWindow(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	var w answers
	check(t, c, 10, &w, Store)
	check(t, c, 10, &w, Pending)
	check(t, c, 10+64, &w, Store) // 10 leaves the window
	c.Committed([]uint64{10}, nil)
	if got := w.of(10); len(got) != 1 || got[0] != nil {
		t.Fatalf("waiter for 10 got %v", got)
	}
	c.Committed([]uint64{74}, nil)
	c.mu.Lock()
	n := c.npending
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("npending = %d after every commit, want 0", n)
	}
	tb.Detach(c)
	if c.pending != nil {
		t.Fatal("a detached client with nothing pending keeps its pending bitmap")
	}
}

func TestEvictionKeepsConnectedAndPending(t *testing.T) {
	const max = 32
	tb := newTable(t, 64, max)
	var w answers
	held := tb.Attach("held") // oldest, but connected
	pend := tb.Attach("pend") // second oldest, detached with a report pending
	check(t, pend, 1, &w, Store)
	tb.Detach(pend)
	for i := range max - 2 {
		tb.Detach(tb.Attach(string(rune('A' + i))))
	}
	if tb.Len() != max {
		t.Fatalf("Len %d, want %d", tb.Len(), max)
	}
	tb.Detach(tb.Attach("new")) // past the bound: the 2 (max/16) oldest idle go
	if tb.Len() != max-1 || tb.Evicted() != 2 {
		t.Fatalf("Len %d, evicted %d; want %d, 2", tb.Len(), tb.Evicted(), max-1)
	}
	tb.mu.Lock()
	_, h := tb.clients["held"]
	_, p := tb.clients["pend"]
	_, a := tb.clients["A"]
	_, b := tb.clients["B"]
	_, cc := tb.clients["C"]
	tb.mu.Unlock()
	if !h || !p || a || b || !cc {
		t.Fatalf("after eviction: held %v pend %v A %v B %v C %v; want the two oldest idle (A, B) gone", h, p, a, b, cc)
	}
	// The remembered window survives a reconnect.
	pend.Committed([]uint64{1}, nil)
	again := tb.Attach("pend")
	check(t, again, 1, &w, Durable)
	tb.Detach(again)
	tb.Detach(held)
}

func TestCheckWaitsForReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb, err := New(Options{Window: 64})
		if err != nil {
			t.Fatal(err)
		}
		c := tb.Attach("a")
		tb.MarkDurable([]byte("a"), 5) // what a rebuild finds
		got := make(chan Verdict, 1)
		go func() { got <- c.Check(5, nil) }()
		synctest.Wait()
		select {
		case v := <-got:
			t.Fatalf("Check returned %s before the table was ready", v)
		default:
		}
		tb.SetReady()
		if v := <-got; v != Durable {
			t.Fatalf("Check = %s after the rebuild, want durable", v)
		}
		tb.Detach(c)
	})
}

func TestCheckAndCommitDoNotAllocate(t *testing.T) {
	tb := newTable(t, 4096, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	seq := uint64(1)
	var seqs [8]uint64
	if n := testing.AllocsPerRun(1000, func() {
		for i := range seqs {
			seqs[i] = seq
			c.Check(seq, nil)
			seq++
		}
		c.Committed(seqs[:], nil)
	}); n != 0 {
		t.Fatalf("%v allocations per 8 Checks and a Commit, want 0", n)
	}
}

func TestConcurrentChecks(t *testing.T) {
	// Two connections of one client race on the same seqs (all within the window):
	// each seq is stored once.
	tb := newTable(t, 1024, 10)
	const n = 1000
	stored := make([][]uint64, 2)
	var wg sync.WaitGroup
	for k := range 2 {
		wg.Go(func() {
			c := tb.Attach("a")
			defer tb.Detach(c)
			var w answers
			for s := uint64(1); s <= n; s++ {
				if c.Check(s, &w) == Store {
					stored[k] = append(stored[k], s)
					c.Committed([]uint64{s}, nil)
				}
			}
		})
	}
	wg.Wait()
	seen := map[uint64]int{}
	for _, l := range stored {
		for _, s := range l {
			seen[s]++
		}
	}
	for s := uint64(1); s <= n; s++ {
		if seen[s] != 1 {
			t.Fatalf("seq %d stored %d times", s, seen[s])
		}
	}
}

func TestNewRefusesBadWindows(t *testing.T) {
	for _, w := range []int{-64, 32, 100, 1 << 25} {
		if _, err := New(Options{Window: w}); err == nil {
			t.Errorf("New accepted window %d", w)
		}
	}
}
