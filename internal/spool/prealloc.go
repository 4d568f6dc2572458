package spool

// Preallocation: a write that extends a file on ext4 reserves a delayed block and
// records a delayed extent for every page it touches, most of what the write costs
// beside the copy into the page cache (docs/PERFORMANCE.md). A segment's blocks are
// therefore allocated ahead of its writes, in steps of preallocStep, with the
// file's size left alone (FALLOC_FL_KEEP_SIZE): readers, retention and shippers see
// only what was written. The allocated but unwritten tail is given back when the
// segment is closed; after a crash at most one step stays allocated past the end
// of that segment until retention removes it.

// preallocStep bounds the blocks allocated past a segment's end: large enough that
// the allocation is a few calls per second at full speed, small enough that a
// segment closed early (an upgrade, a shutdown) or a crash leaves little behind.
const preallocStep = 4 << 20

// preallocate makes sure the blocks for n more bytes of seg are allocated. It is
// best effort: where the file system cannot (or the disk is too full to) allocate
// ahead, the segment is written as it would be without, and no further attempt is
// made on it.
func (s *Spool) preallocate(seg *segment, n int) {
	end := seg.size + int64(n)
	if end <= seg.alloc || seg.noAlloc || s.allocate == nil {
		return
	}
	to := end + preallocStep
	if err := s.allocate(seg.f, seg.alloc, to-seg.alloc); err != nil {
		seg.noAlloc = true
		return
	}
	seg.alloc = to
}

// trimAllocated gives back the blocks allocated past what seg holds, before it is
// closed.
func (s *Spool) trimAllocated(seg *segment) error {
	if seg.alloc <= seg.size {
		return nil
	}
	seg.alloc = seg.size
	return seg.f.Truncate(seg.size)
}
