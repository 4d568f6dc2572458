package pidfile

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.uber.org/zap"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// Outside systemd the file names a process from its Ready on; under systemd a
// process started by an upgrade leaves it to its parent's exit.
func TestAtReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hawk.pid")
	want := strconv.Itoa(os.Getpid()) + "\n"
	New(func() string { return path }, true, zap.NewNop()).AtReady(true)
	if got := read(t, path); got != "" {
		t.Fatalf("under systemd, a new process wrote %q at Ready", got)
	}
	New(func() string { return path }, false, zap.NewNop()).AtReady(true)
	if got := read(t, path); got != want {
		t.Fatalf("outside systemd the file holds %q, want %q", got, want)
	}
	New(func() string { return "" }, false, zap.NewNop()).AtReady(false) // no pid_file: nothing to write
}

// Under systemd, once the parent is gone, MAINPID is told before the file names
// this process.
func TestAfterParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hawk.pid")
	told := false
	New(func() string { return path }, true, zap.NewNop()).AfterParent(-1, func() {
		told = true
		if read(t, path) != "" {
			t.Error("the file was written before MAINPID was told")
		}
	})
	if !told || read(t, path) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("told %v, file %q", told, read(t, path))
	}
	New(func() string { return path }, false, zap.NewNop()).AfterParent(-1, func() { t.Error("MAINPID told outside systemd") })
}
