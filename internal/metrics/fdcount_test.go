package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCountEntries: countEntries counts what os.ReadDir lists, over more entries
// than one getdents64 batch holds, with names that start with dots.
func TestCountEntries(t *testing.T) {
	dir := t.TempDir()
	names := []string{".hidden", "..x", "a"}
	for i := range 700 { // ~32 bytes a record: three 8 KiB batches
		names = append(names, fmt.Sprintf("file-%04d", i))
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := countEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) || got != len(names) {
		t.Fatalf("countEntries = %d, os.ReadDir lists %d, %d made", got, len(want), len(names))
	}
	if _, err := countEntries(filepath.Join(dir, "a")); err == nil {
		t.Error("countEntries of a file: no error")
	}
}

// countEntries allocates nothing per entry: a directory of 700 files costs what
// an empty one does (the path's C string, the buffer).
func TestCountEntriesAllocatesNothingPerEntry(t *testing.T) {
	full, empty := t.TempDir(), t.TempDir()
	for i := range 700 {
		if err := os.WriteFile(filepath.Join(full, fmt.Sprint(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a := testing.AllocsPerRun(10, func() { countEntries(full) })
	b := testing.AllocsPerRun(10, func() { countEntries(empty) })
	if a > b || a > 2 {
		t.Errorf("%v allocations per count of 700 entries, %v of none", a, b)
	}
}
