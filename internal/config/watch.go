package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Why not koanf's file.Provider.Watch (providers/file v1.2.1)? Reading its source:
//
//   - It gives up for good on the first Remove of the file ("file ... was removed"),
//     and also whenever filepath.EvalSymlinks fails on any event in the directory, i.e.
//     whenever the file is briefly absent. A file deleted then recreated is never seen
//     again, and the caller would have to rebuild the watch itself.
//   - It gives up on any fsnotify error, queue overflow included.
//   - It does not debounce: an in-place save (truncate, write) is two or more Write
//     events, each a callback; its only filter drops an identical event within 5ms.
//   - It watches only the symlink's directory: if the file is a symlink into another
//     directory, writes to the target are missed.
//   - It runs the callback on its own goroutine with no context; Unwatch does not wait
//     for that goroutine, and a failed EvalSymlinks at start returns with its mutex
//     still held.
//
// So WatchArmed uses fsnotify directly, on the parent directory (which survives rename-over
// saves, deletes and ConfigMap's ..data swaps, unlike a watch on the file's inode),
// filters events by the file's name, and on every event re-resolves the path's symlinks:
// a changed target (the ..data swap, which names neither the file nor its directory) is
// a change, and the target's own directory is watched as well when it differs.

// DefaultDebounce is the debounce WatchArmed uses when given 0.
const DefaultDebounce = 150 * time.Millisecond

const (
	// maxWaitFactor bounds how long a continuous stream of events can postpone the
	// callback: at most maxWaitFactor × debounce after the first event.
	maxWaitFactor = 10
	// dirRetry is how often WatchArmed tries to re-watch a parent directory that vanished.
	dirRetry = 500 * time.Millisecond
)

// WatchArmed calls fn whenever the file at path changes on disk, until ctx is done,
// then returns nil; armed (if not nil) is called once the watch is in place, so a
// caller that waits for it before declaring itself ready, then reloads once, misses
// no save. Events are debounced: fn runs once the file has been quiet for debounce
// (0 means DefaultDebounce), so one editor save is one call. It sees in-place writes,
// saves that write a temporary file and rename it over, a symlink whose target changes
// (a Kubernetes ConfigMap's ..data swap), and a deletion (one call: a reload then fails
// and the running config stays) followed by a recreation (another call). It keeps
// watching through deletions and invalid contents; if the parent directory itself goes
// away, it re-watches it when it comes back.
//
// fn runs on WatchArmed's goroutine, never concurrently with itself; events arriving
// while it runs lead to one more call. An error is returned only when the watch cannot
// be set up (the parent directory does not exist, inotify limits).
func WatchArmed(ctx context.Context, path string, debounce time.Duration, fn, armed func()) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config: watch %s: %w", path, err)
	}
	defer fw.Close()

	wt := &fileWatch{w: fw, path: abs, dir: filepath.Dir(abs)}
	if err := fw.Add(wt.dir); err != nil {
		return fmt.Errorf("config: watch %s: %w", wt.dir, err)
	}
	wt.resolve()
	if armed != nil {
		armed()
	}

	var (
		fire     = time.NewTimer(time.Hour)
		retry    = time.NewTimer(time.Hour)
		pending  bool
		first    time.Time
		retrying bool
		maxWait  = maxWaitFactor * debounce
	)
	fire.Stop()
	retry.Stop()
	defer fire.Stop()
	defer retry.Stop()

	// kick (re)arms the debounce: fire after debounce of quiet, but no later than
	// maxWait after the first event of the burst.
	kick := func() {
		now := time.Now()
		if !pending {
			pending, first = true, now
		}
		d := min(debounce, max(first.Add(maxWait).Sub(now), 0))
		fire.Reset(d) // Go >= 1.23 timers: Reset needs no drain
	}

	for {
		if wt.dirLost && !retrying {
			retrying = true
			retry.Reset(dirRetry)
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("config: watch: fsnotify closed its event channel")
			}
			if wt.event(ev) {
				kick()
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("config: watch: fsnotify closed its error channel")
			}
			// An overflowed queue lost events: the file may have changed. Other errors
			// leave the watch in place; keep going.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				wt.resolve()
				kick()
			}
		case <-retry.C:
			retrying = false
			if fw.Add(wt.dir) == nil {
				wt.dirLost = false
				wt.resolve()
				kick()
			}
		case <-fire.C:
			pending = false
			if ctx.Err() != nil {
				return nil
			}
			fn()
		}
	}
}

// fileWatch is WatchArmed's state. Only WatchArmed's goroutine touches it.
type fileWatch struct {
	w       *fsnotify.Watcher
	path    string // absolute, as given: may be a symlink
	dir     string // filepath.Dir(path), always watched (while it exists)
	dirLost bool   // dir went away; fsnotify dropped its watch

	target string // path with every symlink resolved; "" while it does not resolve
	last   string // the last target that resolved
	tdir   string // target's directory when it is not dir; watched too
	tdirOK bool   // tdir's watch is in place
	names  map[string]bool
}

// event reports whether ev may have changed the file.
func (wt *fileWatch) event(ev fsnotify.Event) bool {
	changed := false
	if ev.Has(fsnotify.Remove | fsnotify.Rename) {
		switch ev.Name {
		case wt.dir: // the parent directory itself went away
			wt.dirLost, changed = true, true
		case wt.tdir: // the target's directory went away; resolve re-adds it if it is back
			wt.tdirOK, changed = false, true
		}
	}
	if wt.names[ev.Name] && ev.Has(fsnotify.Create|fsnotify.Write|fsnotify.Remove|fsnotify.Rename) {
		changed = true // Chmod alone (touch, chmod) is not a change
	}
	// Any event in the watched directories may be a symlink swap (ConfigMap's ..data is
	// replaced by a rename that names neither the file nor its directory): re-resolve.
	if wt.resolve() {
		changed = true
	}
	return changed
}

// resolve re-resolves the path, keeps the target's directory watched, and reports
// whether the target changed (including appearing or disappearing).
func (wt *fileWatch) resolve() bool {
	t, err := filepath.EvalSymlinks(wt.path)
	if err != nil {
		t = ""
	}
	changed := t != wt.target
	wt.target = t
	if t != "" {
		wt.last = t
	}

	// While the path does not resolve (a symlink's target deleted, to be recreated),
	// keep watching where the target was, so that its return is seen.
	want := ""
	if wt.last != "" {
		if td := filepath.Dir(wt.last); !sameDir(td, wt.dir) {
			want = td
		}
	}
	if want != wt.tdir {
		if wt.tdir != "" && wt.tdirOK {
			_ = wt.w.Remove(wt.tdir) // fails harmlessly if the directory is already gone
		}
		wt.tdir, wt.tdirOK = want, false
	}
	if wt.tdir != "" && !wt.tdirOK {
		wt.tdirOK = wt.w.Add(wt.tdir) == nil
	}

	wt.names = map[string]bool{filepath.Join(wt.dir, filepath.Base(wt.path)): true}
	if wt.last != "" {
		d := wt.dir
		if wt.tdir != "" {
			d = wt.tdir
		}
		wt.names[filepath.Join(d, filepath.Base(wt.last))] = true
	}
	return changed
}

func sameDir(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
