package spool

import (
	"errors"
	"io/fs"

	"go.uber.org/zap"
)

// The page cache: every byte the spool writes lands in a page of the kernel's
// page cache, and with nothing to drop them those pages stay until memory runs
// short, so a spool written for days fills the machine's memory with segments
// nobody reads again. Filling it is also what a write pays most for once free
// memory is gone: a new page must first be reclaimed from somewhere (on a VM,
// faulted in by the host), and the copy into it cost 52 % of the server's CPU at
// 2M reports/s after ~5 GB had been written, against a few percent before. So the
// spool keeps a closed segment cached until the closed segments newer than it hold
// Options.CacheBytes (what a restart's dedup rebuild and shippers tailing the
// spool read back), then writes it back and drops its pages. The segment being
// written is never touched.

// closedSegment is a segment the committer has closed, waiting its turn to leave
// the page cache.
type closedSegment struct {
	name string
	size int64
}

// cacheClosed hands a segment the committer just closed to the page-cache actor.
// It never blocks the committer.
func (s *Spool) cacheClosed(name string, size int64) {
	if s.dropCache == nil || s.cacheBytes.Load() == 0 {
		return
	}
	s.cacheMu.Lock()
	s.cacheQueue = append(s.cacheQueue, closedSegment{name, size})
	s.cacheMu.Unlock()
	s.cacheWake()
}

func (s *Spool) cacheWake() {
	select {
	case s.cacheSignal <- struct{}{}:
	default:
	}
}

// SetCacheBytes changes how many bytes of the newest closed segments stay in the
// page cache, from now on (segments already past the new limit leave at once).
// 0 leaves the page cache to the kernel from the next closed segment on.
func (s *Spool) SetCacheBytes(n int64) {
	s.cacheBytes.Store(max(n, 0))
	s.cacheWake()
}

// CacheBytes returns the limit in force.
func (s *Spool) CacheBytes() int64 { return s.cacheBytes.Load() }

// cache is the page-cache actor: after every rotation (or a new limit) it drops
// each closed segment that has at least the limit's bytes of closed segments
// newer than it, oldest first, until Close. A drop waits for the segment's write-back, so it runs here and not on
// the committer.
func (s *Spool) cache() {
	defer close(s.cacheDone)
	var kept []closedSegment // oldest first
	var keptBytes int64
	for {
		select {
		case <-s.cacheSignal:
		case <-s.stopCache:
			return
		}
		s.cacheMu.Lock()
		for _, c := range s.cacheQueue {
			kept = append(kept, c)
			keptBytes += c.size
		}
		clear(s.cacheQueue)
		s.cacheQueue = s.cacheQueue[:0]
		s.cacheMu.Unlock()
		limit := s.cacheBytes.Load()
		if limit == 0 {
			// Left to the kernel: nothing is tracked, so nothing piles up here.
			clear(kept)
			kept, keptBytes = kept[:0], 0
			continue
		}
		// A segment goes once the closed segments newer than it hold the limit:
		// then at least the newest limit bytes (plus the segment being written)
		// stay cached, which is what a restart's dedup rebuild (or an upgrade's
		// that received no windows) reads when spool.cache_bytes is at least
		// dedup.rebuild_bytes.
		n := 0
		for n < len(kept) && keptBytes-kept[n].size >= limit {
			select {
			case <-s.stopCache:
				return
			default:
			}
			c := kept[n]
			n++
			keptBytes -= c.size
			// Retention may have removed it already; then its pages went with it.
			if err := s.dropCache(c.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("cannot write back a closed segment and drop it from the page cache: a write-back error may mean its records are not on disk",
					zap.String("segment", c.name), zap.Error(err))
			}
		}
		kept = append(kept[:0], kept[n:]...)
	}
}
