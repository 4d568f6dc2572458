package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testDebounce = 100 * time.Millisecond
	callDeadline = 5 * time.Second
	// quiet is how long to wait for a second, unwanted callback: well past the debounce.
	quiet = 4 * testDebounce
)

type watchProbe struct {
	calls atomic.Int32
	ch    chan struct{}
}

// startWatch runs watch on path until the test ends, returning once the watch is set
// up. The test fails if WatchArmed returns early or with an error.
func startWatch(t *testing.T, path string) *watchProbe {
	t.Helper()
	p := &watchProbe{ch: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- WatchArmed(ctx, path, testDebounce, func() {
			p.calls.Add(1)
			p.ch <- struct{}{}
		}, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("watch returned before it was ready: %v", err)
	case <-time.After(callDeadline):
		cancel()
		t.Fatal("watch not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch returned %v", err)
			}
		case <-time.After(callDeadline):
			t.Error("watch did not return after cancel")
		}
	})
	return p
}

// wait waits for the next callback.
func (p *watchProbe) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.ch:
	case <-time.After(callDeadline):
		t.Fatalf("%s: no callback within %s", what, callDeadline)
	}
}

// settle waits out a quiet period and checks the total number of callbacks.
func (p *watchProbe) settle(t *testing.T, want int32, what string) {
	t.Helper()
	time.Sleep(quiet)
	if got := p.calls.Load(); got != want {
		t.Errorf("%s: %d callbacks, want %d", what, got, want)
	}
}

func TestWatchInPlaceWrite(t *testing.T) {
	path := tempConfig(t, "log:\n  level: info\n")
	p := startWatch(t, path)
	writeFile(t, path, "log:\n  level: debug\n")
	p.wait(t, "in-place write")
	p.settle(t, 1, "one in-place write")

	// Appending in several writes within the debounce is still one save.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := f.WriteString("# more\n"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	p.wait(t, "appends")
	p.settle(t, 2, "five quick writes")
}

func TestWatchRenameOver(t *testing.T) {
	path := tempConfig(t, "listen: \":1\"\n")
	p := startWatch(t, path)
	tmp := filepath.Join(filepath.Dir(path), ".hawk.yaml.swp")
	writeFile(t, tmp, "listen: \":2\"\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "rename over")
	p.settle(t, 1, "one rename-over save")

	// vim's way: move the original aside, write a new file, delete the backup.
	backup := path + "~"
	if err := os.Rename(path, backup); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "listen: \":3\"\n")
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "backup-and-write save")
	p.settle(t, 2, "one backup-and-write save")
}

// A Kubernetes ConfigMap volume: hawk.yaml -> ..data/hawk.yaml, ..data -> ..v1; an
// update writes ..v2, points a temporary symlink at it, renames it over ..data, and
// removes ..v1.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mkVersion := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "hawk.yaml"), content)
	}
	mkVersion("..v1", "log:\n  level: info\n")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hawk.yaml")
	if err := os.Symlink(filepath.Join("..data", "hawk.yaml"), path); err != nil {
		t.Fatal(err)
	}
	p := startWatch(t, path)

	mkVersion("..v2", "log:\n  level: debug\n")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..v1")); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "..data swap")
	c := mustLoad(t, &Loader{File: path})
	if c.Log.Level != "debug" {
		t.Errorf("after the swap the file reads level %s", c.Log.Level)
	}
	p.settle(t, 1, "one swap")

	// The new target's directory is watched too: an edit in place there is seen.
	writeFile(t, filepath.Join(dir, "..v2", "hawk.yaml"), "log:\n  level: warn\n")
	p.wait(t, "write to the new target")
	p.settle(t, 2, "one write to the target")
}

// The file is a symlink into another directory: writes, deletion and recreation of
// the target there are all seen.
func TestWatchSymlinkElsewhere(t *testing.T) {
	real := tempConfig(t, "log:\n  level: info\n")
	path := filepath.Join(t.TempDir(), "hawk.yaml")
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	p := startWatch(t, path)
	writeFile(t, real, "log:\n  level: debug\n")
	p.wait(t, "write to the target")
	if err := os.Remove(real); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "target deleted")
	writeFile(t, real, "log:\n  level: warn\n")
	p.wait(t, "target recreated")
	p.settle(t, 3, "three changes")
}

func TestWatchDeleteThenRecreate(t *testing.T) {
	path := tempConfig(t, "log:\n  level: info\n")
	p := startWatch(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "delete")
	p.settle(t, 1, "delete")
	writeFile(t, path, "log: [not valid\n")
	p.wait(t, "recreate (invalid)")
	writeFile(t, path, "log:\n  level: debug\n")
	p.wait(t, "fix")
	p.settle(t, 3, "delete, recreate, fix")

	// Deleted and recreated within the debounce: one change.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "log:\n  level: warn\n")
	p.wait(t, "quick delete and recreate")
	p.settle(t, 4, "quick delete and recreate")
}

func TestWatchFileCreatedLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hawk.yaml")
	p := startWatch(t, path)
	writeFile(t, path, "listen: \":1\"\n")
	p.wait(t, "created")
	p.settle(t, 1, "created")
}

func TestWatchIgnoresOthers(t *testing.T) {
	path := tempConfig(t, "listen: \":1\"\n")
	p := startWatch(t, path)
	dir := filepath.Dir(path)
	writeFile(t, filepath.Join(dir, "other.yaml"), "x")
	if err := os.Remove(filepath.Join(dir, "other.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	p.settle(t, 0, "other files, chmod, touch")
}

// The parent directory goes away and comes back.
func TestWatchParentDirReplaced(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hawk.yaml")
	writeFile(t, path, "listen: \":1\"\n")
	p := startWatch(t, path)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "directory removed")
	p.settle(t, 1, "directory removed")
	// Recreate it atomically, file included.
	staging := filepath.Join(base, "staging")
	if err := os.Mkdir(staging, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(staging, "hawk.yaml"), "listen: \":2\"\n")
	if err := os.Rename(staging, dir); err != nil {
		t.Fatal(err)
	}
	p.wait(t, "directory back")
	p.settle(t, 2, "directory back")
	// And the watch works again.
	writeFile(t, path, "listen: \":3\"\n")
	p.wait(t, "write after the directory came back")
	p.settle(t, 3, "write after the directory came back")
}

func TestWatchStopsAndFails(t *testing.T) {
	if err := WatchArmed(context.Background(), "/nonexistent/dir/hawk.yaml", 0, func() {}, nil); err == nil {
		t.Error("watching in a missing directory: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- WatchArmed(ctx, tempConfig(t, ""), 0, func() {}, nil) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchArmed returned %v after cancel, want nil", err)
		}
	case <-time.After(callDeadline):
		t.Fatal("WatchArmed did not return after cancel")
	}
}
