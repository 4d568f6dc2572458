package spool

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated returns the bytes of disk the file name holds (its blocks), which
// counts blocks allocated past its end where its size does not.
func allocated(t *testing.T, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestSegmentsAllocateAheadAndGiveItBack: with the real fallocate, the segment
// being written holds blocks past its end, its size stays what was written, and
// every segment once closed (by a rotation or by Close) holds no more than its
// bytes.
func TestSegmentsAllocateAheadAndGiveItBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, SegmentSize: 256 << 10})
	want := map[key]bool{}
	submit := func(from uint64) {
		b := batchOf("c")
		for seq := from; seq < from+100; seq++ {
			addRecord(b, "c", seq)
			want[key{"c", seq}] = true
		}
		submitWait(t, s, b)
	}
	submit(1)
	flush(t, s)
	mark, size, ok := s.Mark()
	if !ok {
		t.Fatal("no segment open")
	}
	if got := allocated(t, filepath.Join(dir, mark)); got < size+preallocStep {
		t.Fatalf("the segment being written holds %d bytes of blocks for %d bytes written, want at least %d: nothing was allocated ahead",
			got, size, size+preallocStep)
	}
	for seq := uint64(101); seq <= 10000; seq += 100 {
		submit(seq)
	}
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := segmentFiles(t, dir)
	if len(names) < 3 {
		t.Fatalf("%d segments, want at least 3 (rotations)", len(names))
	}
	const block = 4096
	for _, name := range names {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// One block more than the data's for a file system that rounds differently.
		if got, limit := allocated(t, path), (fi.Size()+block-1)/block*block+block; got > limit {
			t.Errorf("closed segment %s holds %d bytes of blocks for %d bytes of data: what was allocated ahead was not given back", name, got, fi.Size())
		}
	}
	// readDir fails on a byte that is not part of a whole line (the zeros of an
	// allocated block counted into a size, say).
	exactlyOnce(t, readDir(t, dir), want)
}
