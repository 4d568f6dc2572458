package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// resident counts the pages of the file name that are in the page cache.
func resident(t *testing.T, name string) int {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (fi.Size()+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// droppableDir returns a directory on a file system whose pages the kernel can
// drop: tmpfs keeps its pages (they are the files), so where the temporary
// directory is a tmpfs the test works in the package's own directory instead.
func droppableDir(t *testing.T) string {
	t.Helper()
	if dir := t.TempDir(); !onTmpfs(t, dir) {
		return dir
	}
	dir, err := os.MkdirTemp(".", "pagecache-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if onTmpfs(t, dir) {
		t.Fatalf("both the temporary directory and %s are on tmpfs: no file system here can drop pages", dir)
	}
	return dir
}

func onTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

func TestDropPageCacheWritesBackAndDrops(t *testing.T) {
	name := filepath.Join(droppableDir(t), "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB, dirty in the page cache
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, name); n == 0 {
		t.Fatal("a file just written has no page in the page cache")
	}
	if err := dropPageCache(name); err != nil {
		t.Fatal(err)
	}
	if n := resident(t, name); n != 0 {
		t.Fatalf("%d pages still in the page cache after the drop", n)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file read back differs from what was written")
	}
}

// TestSpoolLeavesOldSegmentsOutOfThePageCache: with the real drop, the closed
// segments past the limit leave the page cache and the records stay readable.
func TestSpoolLeavesOldSegmentsOutOfThePageCache(t *testing.T) {
	dir := droppableDir(t)
	s := open(t, Options{Dir: dir, SegmentSize: 64 << 10, CacheBytes: 128 << 10})
	want := map[key]bool{}
	for seq := uint64(1); seq <= 8000; seq += 100 {
		b := batchOf("c")
		for i := range uint64(100) {
			addRecord(b, "c", seq+i)
			want[key{"c", seq + i}] = true
		}
		w := newWaiter()
		s.Submit(b, w)
		if err := w.wait(t); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	names, _ := closedSegments(t, s)
	if len(names) < 4 {
		t.Fatalf("%d closed segments, want at least 4 to have some past the limit", len(names))
	}
	testutil.Eventually(t, waitTimeout, func() bool { return resident(t, names[0]) == 0 && resident(t, names[1]) == 0 },
		"the two oldest closed segments out of the page cache")
	s.Close()
	exactlyOnce(t, readDir(t, dir), want)
}

func TestCacheToleratesRemovedSegments(t *testing.T) {
	d := &drops{}
	s := open(t, Options{SegmentSize: 1, CacheBytes: 1, DropCache: func(name string) error {
		d.drop(name)
		return dropPageCache(name)
	}})
	rotations(t, s, 1, 2)
	names, _ := closedSegments(t, s)
	testutil.Eventually(t, waitTimeout, func() bool { return len(d.list()) == 1 }, "the closed segment dropped")
	if err := os.Remove(names[0]); err != nil {
		t.Fatal(err)
	}
	if err := dropPageCache(names[0]); !os.IsNotExist(err) {
		t.Fatalf("dropping a removed segment: %v, want a not-exist error (which the actor ignores)", err)
	}
}
