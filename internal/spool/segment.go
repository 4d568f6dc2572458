package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"go.uber.org/zap"
)

// segCounter numbers segments process-wide, not per Spool: two Spools of one
// process on one directory (tests, or a misconfiguration) then still never try
// the same name, and O_EXCL is left to settle only true collisions between
// processes (a reused pid, as in containers where the server is always pid 1).
var segCounter atomic.Uint64

// maxNameAttempts bounds the retries after a name collision: each retry takes a
// new counter value and start time, so more than a few means something else is wrong.
const maxNameAttempts = 100

// segment is the file the spool appends to. Only the holder of the commit uses it.
type segment struct {
	f    File
	name string
	// size is the length of the file's good part: every byte up to it belongs to
	// a batch that was written successfully. A failed write is truncated back to it.
	size int64
	// dirSynced tells whether the directory entry is known to be on disk: a file
	// fsynced but missing from the directory after a crash is lost all the same.
	dirSynced bool
	// alloc is the offset up to which the file's blocks are allocated ahead of its
	// writes (prealloc.go); noAlloc stops trying after the file system refused.
	alloc   int64
	noAlloc bool
}

// openSegment creates the next segment, retrying with the next name while the
// name is taken.
func (s *Spool) openSegment() (*segment, error) {
	var err error
	for range maxNameAttempts {
		name := filepath.Join(s.dir, SegmentName(s.now(), s.pid, segCounter.Add(1)-1))
		var f File
		f, err = s.openFile(name)
		if err == nil {
			if s.obs != nil {
				s.obs.SegmentOpened(name)
			}
			s.log.Info("segment opened", zap.String("segment", name))
			s.current.Store(filepath.Base(name))
			return &segment{f: f, name: name}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("spool: create segment: %w", err)
		}
	}
	return nil, fmt.Errorf("spool: create segment in %s: %d names in a row already taken: %w", s.dir, maxNameAttempts, err)
}

// rotate starts a new segment once the current one is full. The new one is
// created before the old one is closed: if creating fails (disk full), the spool
// keeps a segment to write to and tries again after the next batch. Shippers may
// treat the old segment as complete the moment the new one appears, which holds:
// the committer wrote its last byte to the old one before getting here.
func (s *Spool) rotate() {
	if old := s.seg; old == nil || old.size < s.segSize.Load() {
		return
	}
	s.rotateNow()
}

// rotateNow closes the current segment and opens the next one.
func (s *Spool) rotateNow() {
	old := s.seg
	next, err := s.openSegment()
	if err != nil {
		s.log.Error("cannot rotate, writing on to the full segment", zap.String("segment", old.name), zap.Int64("size", old.size), zap.Error(err))
		return
	}
	s.seg = next
	if err := s.trimAllocated(old); err != nil {
		s.log.Error("cannot give back the blocks allocated past a full segment's end", zap.String("segment", old.name), zap.Error(err))
	}
	if err := old.f.Close(); err != nil {
		s.log.Error("closing a full segment failed", zap.String("segment", old.name), zap.Error(err))
	}
	s.cacheClosed(old.name, old.size)
	s.retainWake()
}

// closeSegment closes the last segment at shutdown, removing it when empty so
// that restarts and upgrades do not leave a trail of empty files.
func (s *Spool) closeSegment() error {
	seg := s.seg
	if seg == nil {
		return nil
	}
	s.seg = nil
	if err := s.trimAllocated(seg); err != nil {
		s.log.Warn("cannot give back the blocks allocated past the last segment's end", zap.String("segment", seg.name), zap.Error(err))
	}
	if err := seg.f.Close(); err != nil {
		return fmt.Errorf("spool: close %s: %w", seg.name, err)
	}
	if seg.size == 0 {
		if err := s.remove(seg.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot remove an empty segment", zap.String("segment", seg.name), zap.Error(err))
		}
	}
	return nil
}

// DefaultFileMode is the segments' permissions when Options.FileMode is 0: the
// owner writes, hawk's group (a log shipper) reads, nobody else.
const DefaultFileMode fs.FileMode = 0o640

// DirMode is the permissions of a directory holding files of mode m: m plus
// search (x) wherever m gives read.
func DirMode(m fs.FileMode) fs.FileMode { return m | (m&0o444)>>2 }

// mkdir creates dir (and its parents) if it does not exist, dir itself with
// exactly mode whatever the umask; an existing directory keeps its mode.
func mkdir(dir string, mode fs.FileMode) error {
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// createSegment creates a new segment file with exactly mode: the umask may
// take bits away at create, so they are set again.
func createSegment(name string, mode fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, mode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(name)
		return nil, err
	}
	return f, nil
}

// SyncDir makes the directory entries of the files created in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
