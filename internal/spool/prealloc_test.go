package spool

import (
	"errors"
	"sync"
	"testing"
)

// allocations records the spool's Allocate calls; fail, when set, refuses them.
type allocations struct {
	mu    sync.Mutex
	calls []allocCall
	fail  error
}

type allocCall struct {
	file    string
	off, to int64
}

func (a *allocations) allocate(f File, off, n int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, allocCall{f.Name(), off, off + n})
	return a.fail
}

func (a *allocations) snapshot() []allocCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]allocCall(nil), a.calls...)
}

// TestPreallocationStepsAheadOfTheWrites: blocks are asked for in steps, each
// starting where the last ended, only when a write would pass the end of what
// is allocated; a refusal stops the asking for that segment and fails no write;
// a failed write's truncate gives the allocation back, so the next write asks
// again from the good size.
func TestPreallocationStepsAheadOfTheWrites(t *testing.T) {
	fsys := &fakeFS{}
	a := &allocations{}
	s := openFake(t, fsys, Options{Allocate: a.allocate})
	commit := func(seq uint64) { t.Helper(); submitWait(t, s, batchOf("c", seq)) }
	commit(1)
	first := len(fsys.file(0).data)
	commit(2)
	commit(3)
	calls := a.snapshot()
	if len(calls) != 1 || calls[0].off != 0 || calls[0].to != int64(first)+preallocStep {
		t.Fatalf("allocations after 3 small batches: %+v, want one, [0, %d)", calls, first+preallocStep)
	}

	// A batch past the allocated end asks for the next step from there.
	big := batchOf("c")
	for seq := uint64(4); len(big.Lines()) <= preallocStep; seq++ {
		addRecord(big, "c", seq)
	}
	submitWait(t, s, big)
	calls = a.snapshot()
	size := int64(len(fsys.file(0).data))
	if len(calls) != 2 || calls[1].off != calls[0].to || calls[1].to != size+preallocStep {
		t.Fatalf("allocations after a batch past the allocated end: %+v, want a second one [%d, %d)", calls, calls[0].to, size+preallocStep)
	}

	// A failed write is truncated back, and with it what was allocated.
	fsys.set(func(fsys *fakeFS) {
		fsys.writeErr = func(p []byte) (int, error) { return len(p) / 2, errors.New("EIO") }
	})
	w := newWaiter()
	s.Submit(batchOf("c", 1<<20), w)
	if err := w.wait(t); err == nil {
		t.Fatal("the failing write was acknowledged")
	}
	fsys.set(func(fsys *fakeFS) { fsys.writeErr = nil })
	a.mu.Lock()
	a.fail = errors.New("EOPNOTSUPP")
	a.mu.Unlock()
	commit(1<<20 + 1)
	calls = a.snapshot()
	if last := calls[len(calls)-1]; len(calls) != 3 || last.off != size {
		t.Fatalf("allocations after a failed write: %+v, want the last from the good size %d", calls, size)
	}
	// Refused: the write went on, and the segment is not asked again.
	n := len(calls)
	for seq := uint64(1<<20 + 2); seq < 1<<20+5; seq++ {
		commit(seq)
	}
	if got := len(a.snapshot()); got != n {
		t.Fatalf("%d allocations after the file system refused one, want none", got-n)
	}
}
