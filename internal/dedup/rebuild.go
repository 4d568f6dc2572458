package dedup

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// RebuildStats says what a rebuild read.
type RebuildStats struct {
	Segments int           // segments read, in whole or in part
	Bytes    int64         // bytes read
	Lines    int64         // record lines applied
	Bad      int64         // complete lines that are not records (skipped)
	Clients  int           // clients remembered afterwards
	Took     time.Duration // wall time
}

// MBPerSecond is the rebuild's read rate.
func (s RebuildStats) MBPerSecond() float64 {
	if s.Took <= 0 {
		return 0
	}
	return float64(s.Bytes) / 1e6 / s.Took.Seconds()
}

// Rebuild marks durable every report in the tail of the spool in dir: the newest
// segments (by name, that is by start time) holding at most maxBytes together, the
// oldest of them read from a line boundary maxBytes from the end. Segments are not
// told apart by pid: a restarted server may have the pid of the one before it (pid 1
// in a container), and this process's own segments are empty until the gate opens.
// It does not open the gate: the caller calls SetReady, after Follow's first pass if
// it follows a parent.
//
// It returns, for Follow, every segment and where its reading stopped (at its
// size then for those beyond the budget).
func (t *Table) Rebuild(dir string, maxBytes int64) (RebuildStats, []SegmentFile, error) {
	began := time.Now()
	var st RebuildStats
	segs, err := listSegments(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return st, nil, nil
		}
		return st, nil, fmt.Errorf("dedup: rebuild: %w", err)
	}
	// Newest first, until the budget is spent.
	first := len(segs)
	budget := maxBytes
	for i := len(segs) - 1; i >= 0 && budget > 0; i-- {
		fi, err := os.Stat(dirJoin(dir, segs[i].name))
		if err != nil {
			continue // removed meanwhile
		}
		first = i
		if fi.Size() > budget {
			segs[i].off, segs[i].skip = fi.Size()-budget, true
		}
		budget -= fi.Size()
	}
	r := &reader{t: t}
	for i := range segs {
		if i < first {
			// Beyond the budget: not read, and Follow must not read it either.
			if fi, err := os.Stat(dirJoin(dir, segs[i].name)); err == nil {
				segs[i].off = fi.Size()
			}
			continue
		}
		if err := r.scan(dir, &segs[i]); err != nil {
			return st, nil, fmt.Errorf("dedup: rebuild: %w", err)
		}
		st.Segments++
	}
	st.Bytes, st.Lines, st.Bad = r.bytes, r.lines, r.bad
	st.Clients = t.Len()
	st.Took = time.Since(began)
	return st, segs, nil
}

func dirJoin(dir, name string) string { return dir + string(os.PathSeparator) + name }

// FollowStats says what following a process read.
type FollowStats struct {
	Bytes, Lines int64
	Took         time.Duration
}

// Follow keeps reading the segments of process pid in dir (those Rebuild read,
// from where it stopped, and any it creates later) and marks their lines durable,
// every interval, until alive reports pid gone (then it reads once more, to the
// end) or ctx is done. first is called after the first pass, which reads
// everything pid wrote so far: open the gate then.
//
// A pass reads only what can still grow: a process appends to its newest segment
// only (internal/spool's doc), so the older ones are read to their end once and
// left. The directory is listed again only when the newest segment did not grow
// in the last pass (the process may have rotated) or listInterval has passed, so a
// pass costs one read of one file while the process is busy, however many
// segments the directory holds.
func (t *Table) Follow(ctx context.Context, dir string, pid int, from []SegmentFile, interval time.Duration, alive func(int) bool, first func()) (FollowStats, error) {
	began := time.Now()
	r := &reader{t: t}
	var segs []SegmentFile // pid's segments by name; segs[done:] may still grow
	known := map[string]bool{}
	for _, f := range from {
		if f.pid == pid {
			segs = append(segs, f)
			known[f.name] = true
		}
	}
	slices.SortFunc(segs, func(a, b SegmentFile) int { return strings.Compare(a.name, b.name) })
	done := max(0, len(segs)-1) // the older ones were read to their end by Rebuild
	var listed time.Time
	grew := false
	pass := func(final bool) error {
		if final || !grew || time.Since(listed) >= listInterval {
			all, err := listSegments(dir)
			if err != nil {
				return err
			}
			listed = time.Now()
			for _, f := range all {
				if f.pid == pid && !known[f.name] {
					known[f.name] = true
					segs = append(segs, f) // names sort by time: a new one is the newest
				}
			}
		}
		before := r.bytes
		for i := done; i < len(segs); i++ {
			if err := r.scan(dir, &segs[i]); err != nil {
				return err
			}
			if i < len(segs)-1 {
				done = i + 1 // a newer segment exists: this one is complete
			}
		}
		grew = r.bytes > before
		return nil
	}
	stats := func() FollowStats { return FollowStats{Bytes: r.bytes, Lines: r.lines, Took: time.Since(began)} }
	err := pass(true)
	first()
	if err != nil {
		return stats(), fmt.Errorf("dedup: follow pid %d: %w", pid, err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		gone := !alive(pid)
		if err := pass(gone); err != nil {
			return stats(), fmt.Errorf("dedup: follow pid %d: %w", pid, err)
		}
		if gone {
			return stats(), nil
		}
		select {
		case <-ctx.Done():
			return stats(), nil
		case <-tick.C:
		}
	}
}

// listInterval bounds how long Follow goes without listing the directory.
const listInterval = 100 * time.Millisecond
