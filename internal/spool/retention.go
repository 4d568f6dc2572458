package spool

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// retainInterval is how often retention looks at the directory when no rotation
// wakes it: ages pass and other processes write without telling this one, and the
// free-space gauges should stay fresh for the alert that watches them.
const retainInterval = 5 * time.Second

// Removal reasons, as RetentionObserver.SegmentRemoved reports them.
const (
	RemovedForBytes = "bytes" // the spool held more than its byte limit
	RemovedForAge   = "age"   // the segment's last write was longer ago than the age limit
	// RemovedDiscarded: over the byte limit, a segment its reader had not finished
	// (Options.DiscardUnsent); the records it had not read are lost to it.
	RemovedDiscarded = "discarded"
)

// RetentionStats is what one retention pass found, after its removals.
type RetentionStats struct {
	Bytes    int64 // bytes in every segment of the directory, of every process
	Segments int   // segments in the directory
	DiskFree int64 // bytes available to this process on the spool's file system
	DiskSize int64 // size of that file system
}

// RetentionObserver receives retention's measurements. Its methods run on the
// retention goroutine, never on the committer, except RefusedFull.
type RetentionObserver interface {
	Retained(st RetentionStats)
	SegmentRemoved(name string, bytes int64, reason string)
	// Discarded counts the records a RemovedDiscarded segment held past what its
	// reader had read.
	Discarded(records int64)
	// RefusedFull counts records refused at the hard limit (limit.go), on the
	// committer.
	RefusedFull(records int)
}

// SetRetention changes the limits from the next pass on (it starts one): the
// oldest closed segments are removed while the directory holds more than maxBytes
// or while their last write is older than maxAge. 0 means no limit.
func (s *Spool) SetRetention(maxBytes int64, maxAge time.Duration) {
	s.maxBytes.Store(max(maxBytes, 0))
	s.maxAge.Store(int64(max(maxAge, 0)))
	s.retainWake()
}

// Retention returns the limits in force.
func (s *Spool) Retention() (maxBytes int64, maxAge time.Duration) {
	return s.maxBytes.Load(), time.Duration(s.maxAge.Load())
}

// Retain starts removing segments past the limits (Options.MaxBytes, MaxAge,
// SetRetention) once ready is closed, until Close. The server passes the dedup
// table's gate: the rebuild has then read what it reads of the tail. Called at
// most once; a Spool never told to Retain removes nothing.
func (s *Spool) Retain(ready <-chan struct{}) {
	if s.retaining.Swap(true) {
		return
	}
	go s.retain(ready)
}

func (s *Spool) retainWake() {
	select {
	case s.rotated <- struct{}{}:
	default:
	}
}

// retain is the retention actor: one pass after every rotation and every
// retainInterval, until Close.
func (s *Spool) retain(ready <-chan struct{}) {
	defer close(s.retainDone)
	select {
	case <-ready:
	case <-s.stopRetain:
		return
	}
	tick := time.NewTicker(retainInterval)
	defer tick.Stop()
	for {
		s.retainPass()
		select {
		case <-s.stopRetain:
			return
		case <-tick.C:
		case <-s.rotated:
		}
	}
}

// dirSegment is a segment as one retention pass sees it.
type dirSegment struct {
	Segment
	size   int64
	mod    time.Time
	closed bool
}

// retainPass removes the oldest closed segments past the limits and reports
// what is left.
func (s *Spool) retainPass() {
	written := s.written.Load()
	segs, err := s.closedSegments()
	if err != nil {
		s.log.Warn("retention cannot list the spool", zap.Error(err))
		return
	}
	var total int64
	for _, g := range segs {
		total += g.size
	}
	maxBytes, maxAge := s.maxBytes.Load(), time.Duration(s.maxAge.Load())
	now := s.now()
	// Under a hard limit writes stop at maxBytes, so retention keeps room for
	// them: a segment's worth, or half the limit when that is smaller.
	target := maxBytes
	if s.hardLimit() {
		target -= min(s.segSize.Load(), maxBytes/2)
	}
	kept := len(segs)
	unsent := func(string) (bool, int64) { return false, 0 }
	if s.unsent != nil {
		unsent = s.unsent()
	}
	for _, g := range segs { // oldest first
		if !g.closed {
			continue
		}
		reason := ""
		var discarded int64
		pending, sent := unsent(g.Name)
		switch {
		case pending && s.discard && maxBytes > 0 && total > maxBytes:
			reason = RemovedDiscarded
			discarded = countLines(filepath.Join(s.dir, g.Name), sent)
		case pending:
			continue
		case maxAge > 0 && now.Sub(g.mod) > maxAge:
			reason = RemovedForAge
		case maxBytes > 0 && total > target:
			reason = RemovedForBytes
		default:
			continue
		}
		if err := s.remove(filepath.Join(s.dir, g.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("retention cannot remove a segment", zap.String("segment", g.Name), zap.Error(err))
			continue
		}
		// Gone, whoever removed it: another process sharing the directory (an
		// upgrade's parent and child) may have taken it first.
		total -= g.size
		kept--
		s.log.Info("segment removed by retention", zap.String("segment", g.Name), zap.Int64("bytes", g.size), zap.String("reason", reason))
		if s.robs != nil {
			s.robs.SegmentRemoved(g.Name, g.size, reason)
			if discarded > 0 {
				s.robs.Discarded(discarded)
			}
		}
	}
	// The hard limit's count: what is left, plus what this process wrote while
	// the pass ran (perhaps counted twice: the limit errs on the safe side).
	s.dirBytes.Store(total + s.written.Load() - written)
	if s.robs == nil {
		return
	}
	st := RetentionStats{Bytes: total, Segments: kept}
	var fsst syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fsst); err == nil {
		st.DiskFree = int64(fsst.Bavail) * int64(fsst.Bsize)
		st.DiskSize = int64(fsst.Blocks) * int64(fsst.Bsize)
	}
	s.robs.Retained(st)
}

// closedSegments lists the directory's segments, oldest first, and tells which
// are closed: a segment still receives bytes while its process runs and has no
// newer one (the package doc), so it is kept: this process's current segment,
// and during an upgrade the other process's, which that process's dedup follows.
func (s *Spool) closedSegments() ([]dirSegment, error) {
	list, err := Segments(s.dir)
	if err != nil {
		return nil, err
	}
	segs := make([]dirSegment, 0, len(list))
	newest := map[int]int{} // pid -> index in segs of its newest segment
	for _, g := range list {
		fi, err := os.Stat(filepath.Join(s.dir, g.Name))
		if err != nil {
			continue // removed meanwhile
		}
		newest[g.PID] = len(segs)
		segs = append(segs, dirSegment{Segment: g, size: fi.Size(), mod: fi.ModTime(), closed: true})
	}
	current, _ := s.current.Load().(string)
	for pid, i := range newest {
		if pid == s.pid || s.alive(pid) {
			segs[i].closed = false
		}
	}
	for i := range segs {
		if segs[i].Name == current {
			segs[i].closed = false // even if the clock stepped back and a newer name exists
		}
	}
	return segs, nil
}

// countLines counts the whole lines of the file at path from byte offset from on:
// the records of a segment its reader has not read. A file that cannot be read
// counts 0.
func countLines(path string, from int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	var n int64
	for off := from; ; {
		m, err := f.ReadAt(buf, off)
		n += int64(bytes.Count(buf[:m], []byte{'\n'}))
		off += int64(m)
		if err != nil {
			return n
		}
	}
}
