package spool

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestMarkIsTheSegmentAndItsSize(t *testing.T) {
	s := open(t, Options{})
	w := newWaiter()
	s.Submit(batchOf("c", 1, 2, 3), w)
	if err := w.wait(t); err != nil {
		t.Fatal(err)
	}
	name, size, ok := s.Mark()
	if !ok {
		t.Fatal("no mark on an open spool")
	}
	fi, err := os.Stat(filepath.Join(s.dir, name))
	if err != nil {
		t.Fatalf("the mark's segment: %v", err)
	}
	if size != fi.Size() || size != int64(len(batchOf("c", 1, 2, 3).Lines())) {
		t.Fatalf("mark at %d, the segment holds %d bytes", size, fi.Size())
	}
	if pid, ok := SegmentPID(name); !ok || pid != os.Getpid() {
		t.Fatalf("mark %q: pid %d, %v", name, pid, ok)
	}
	s.Close()
	if _, _, ok := s.Mark(); ok {
		t.Fatal("a mark after Close")
	}
}

// A Mark asked during a commit returns after it: with the commit's lines before
// the mark and its Waiters called.
func TestMarkWaitsForTheCommitInProgress(t *testing.T) {
	fsys := &fakeFS{}
	s := openFake(t, fsys, Options{})
	g := holdNextWrite(fsys)
	var release sync.Once
	open := func() { release.Do(func() { close(g.release) }) }
	t.Cleanup(open) // before the spool's Close (cleanups run last first): a failure must not leave the write held
	w := newWaiter()
	go s.Submit(batchOf("c", 7), w)
	g.waitEntered(t)
	type mark struct {
		size int64
		ok   bool
	}
	marked := make(chan mark, 1)
	go func() {
		_, size, ok := s.Mark()
		marked <- mark{size, ok}
	}()
	testutil.Eventually(t, waitTimeout, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.marking == 1
	}, "Mark to wait for the commit")
	open()
	m := recv(t, marked, "Mark returning")
	if !m.ok || m.size != int64(len(batchOf("c", 7).Lines())) {
		t.Fatalf("mark %+v, want after the held write", m)
	}
	if !w.told() {
		t.Fatal("Mark returned before the commit's Waiter was called")
	}
}
