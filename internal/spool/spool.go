package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/proc"
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is not positive.
const DefaultSegmentSize = 64 << 20

// DefaultMaxPending is the pending-bytes bound used when Options.MaxPending is not
// positive.
const DefaultMaxPending = 64 << 20

// maxRetained caps the batch buffers kept for reuse: a burst (say, a slow disk
// while thousands of agents keep sending) must not pin its peak memory forever.
const maxRetained = 8 << 20

// File is the part of *os.File the spool uses.
type File interface {
	io.Writer
	Sync() error
	Close() error
	Truncate(size int64) error
	Name() string
}

// Observer receives measurements for metrics. All methods must be cheap: they run
// on the goroutine holding the commit (never two at once), between a write and the
// ACKs of the next one.
type Observer interface {
	BatchWritten(records int, bytes int, write time.Duration, fsync time.Duration) // fsync==0 when not fsyncing
	WriteFailed(err error)
	SegmentOpened(name string)
	// AckLatency: n records waited d from their Submit until durable (once per
	// Submit call whose batch succeeded).
	AckLatency(d time.Duration, n int)
	// Throttled: a Submit found MaxPending bytes waiting and blocks until the
	// committer takes them; the disk is not keeping up.
	Throttled()
}

// Options configure Open.
type Options struct {
	Dir         string
	Fsync       bool  // fsync after every batch write
	SegmentSize int64 // rotate when the current segment reaches this many bytes; DefaultSegmentSize if <= 0
	// MaxPending bounds the bytes waiting for the next group commit; DefaultMaxPending
	// if <= 0. Past it Submit blocks until the committer takes the batch: when the disk
	// cannot keep up, connections stop being read and TCP pushes back on the agents,
	// instead of the server buffering without limit.
	MaxPending int
	// FileMode is the permissions of the segments, whatever the umask;
	// DefaultFileMode if 0. A directory Open creates gets these plus search
	// where read is given (DirMode).
	FileMode fs.FileMode
	Logger   *zap.Logger
	// OS calls behind fields so tests can inject failures (tableflip style); nil means the real os functions.
	OpenFile func(name string) (File, error) // creates a NEW file (O_CREATE|O_EXCL|O_WRONLY|O_APPEND, FileMode)
	Remove   func(name string) error         // removes an empty segment at Close
	SyncDir  func(dir string) error          // fsyncs the directory, to make a new segment's entry durable
	Now      func() time.Time                // the start time in segment names
	Observer Observer                        // optional, may be nil

	// Retention (retention.go), once Retain is called: the oldest closed segments
	// go while the directory holds more than MaxBytes or their last write is older
	// than MaxAge; 0 means no limit.
	MaxBytes          int64
	MaxAge            time.Duration
	RetentionObserver RetentionObserver  // optional, may be nil
	Alive             func(pid int) bool // whether a process may still write its newest segment; nil means proc.Alive
	// Unsent, when set, is asked once per retention pass which segments a reader
	// of the spool (the JetStream forwarder) has not finished, and how many of a
	// segment's bytes it has: retention keeps the unfinished ones whatever the
	// limits, unless DiscardUnsent. With Unsent and MaxBytes set and DiscardUnsent
	// false, MaxBytes is a hard limit (limit.go).
	Unsent func() func(name string) (unsent bool, sent int64)
	// DiscardUnsent lets MaxBytes remove segments Unsent says are unfinished, the
	// oldest first, counting the records not yet read (spool.discard: old).
	DiscardUnsent bool

	// CacheBytes keeps the newest closed segments in the page cache while they hold
	// at most this many bytes; older closed segments are written back and dropped
	// from it (cache.go). 0 leaves the page cache to the kernel.
	CacheBytes int64
	// Allocate allocates the blocks of [off, off+n) in a segment without changing
	// its size (prealloc.go); nil means the real one (none off Linux).
	Allocate func(f File, off, n int64) error

	// DropCache writes a closed segment back and drops it from the page cache; nil
	// means the real one (none off Linux: CacheBytes then does nothing).
	DropCache func(name string) error
}

// Spool appends submitted lines to segment files with group commit. Its methods
// are safe for concurrent use.
type Spool struct {
	dir      string
	pid      int
	log      *zap.Logger
	obs      Observer
	openFile func(string) (File, error)
	remove   func(string) error
	syncDir  func(string) error
	now      func() time.Time
	allocate func(f File, off, n int64) error // nil: segments are not preallocated

	fsync      atomic.Bool
	segSize    atomic.Int64
	maxPending int

	// Retention: the limits, the current segment's name (set by the committer, read
	// by retention) and the retention actor's channels.
	maxBytes   atomic.Int64
	maxAge     atomic.Int64 // a time.Duration
	current    atomic.Value // string
	robs       RetentionObserver
	alive      func(int) bool
	unsent     func() func(string) (bool, int64)
	discard    bool          // DiscardUnsent
	dirBytes   atomic.Int64  // the directory's bytes: the last pass's count, plus what this process wrote since
	written    atomic.Int64  // bytes this process wrote
	rotated    chan struct{} // cap 1: a rotation or new limits; retention passes again
	stopRetain chan struct{} // closed by Close
	retainDone chan struct{} // closed when the retention actor has exited
	retaining  atomic.Bool   // Retain was called

	// The page-cache actor (cache.go): the committer queues the segments it closes.
	cacheBytes  atomic.Int64
	dropCache   func(string) error // nil: no actor
	cacheMu     sync.Mutex
	cacheQueue  []closedSegment // on cacheMu
	cacheSignal chan struct{}   // cap 1: a segment was queued, or a new limit
	stopCache   chan struct{}   // closed by Close
	cacheDone   chan struct{}   // closed when the actor has exited

	signal chan struct{} // cap 1: "pending went from empty to non-empty", or Close
	done   chan struct{} // closed when the committer has exited

	mu      sync.Mutex
	room    sync.Cond // on mu: the committer took the pending batch, or Close
	idle    sync.Cond // on mu: the commit was given up while marking > 0 (Mark)
	marking int
	pending batch
	closed  bool
	// committing: a goroutine (a leader in Submit, or the committer goroutine)
	// holds the commit, and with it everything below.
	committing bool

	// Owned by the holder of the commit.
	spare      batch
	seg        *segment // nil after a segment was abandoned and no new one could be created yet
	closeErr   error    // set before done is closed
	lastErrLog time.Time
	suppressed int       // write failures not logged since lastErrLog
	fullWake   time.Time // when a refusal at the hard limit last woke retention
	fullLog    time.Time // and when it was last logged
}

// batch is what one group commit writes: the lines of many Submit calls, their
// seqs in one flat slice, and which seqs belong to which Waiter.
type batch struct {
	lines   []byte
	seqs    []uint64
	entries []entry
}

type entry struct {
	w          ingest.Waiter
	start, end int       // w's seqs are seqs[start:end]
	at         time.Time // when submitted, for the ack latency
}

func (b *batch) reset() {
	// Drop the Waiters: a spare buffer must not keep closed connections reachable.
	clear(b.entries)
	if cap(b.lines) > maxRetained || cap(b.seqs) > maxRetained/8 {
		*b = batch{}
		return
	}
	b.lines, b.seqs, b.entries = b.lines[:0], b.seqs[:0], b.entries[:0]
}

// Open creates dir if needed, creates the first segment (so a spool that cannot
// write fails at startup, not at the first report) and starts the committer.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory given")
	}
	mode := opts.FileMode
	if mode == 0 {
		mode = DefaultFileMode
	}
	if err := mkdir(opts.Dir, DirMode(mode)); err != nil {
		return nil, fmt.Errorf("spool: create directory: %w", err)
	}
	s := &Spool{
		dir:         opts.Dir,
		pid:         os.Getpid(),
		log:         opts.Logger,
		obs:         opts.Observer,
		openFile:    opts.OpenFile,
		remove:      opts.Remove,
		syncDir:     opts.SyncDir,
		now:         opts.Now,
		signal:      make(chan struct{}, 1),
		done:        make(chan struct{}),
		maxPending:  opts.MaxPending,
		robs:        opts.RetentionObserver,
		alive:       opts.Alive,
		unsent:      opts.Unsent,
		discard:     opts.DiscardUnsent,
		rotated:     make(chan struct{}, 1),
		stopRetain:  make(chan struct{}),
		retainDone:  make(chan struct{}),
		dropCache:   opts.DropCache,
		allocate:    opts.Allocate,
		cacheSignal: make(chan struct{}, 1),
		stopCache:   make(chan struct{}),
		cacheDone:   make(chan struct{}),
	}
	s.room.L = &s.mu
	s.idle.L = &s.mu
	if s.maxPending <= 0 {
		s.maxPending = DefaultMaxPending
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.openFile == nil {
		s.openFile = func(name string) (File, error) { return createSegment(name, mode) }
	}
	if s.remove == nil {
		s.remove = os.Remove
	}
	if s.syncDir == nil {
		s.syncDir = SyncDir
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.alive == nil {
		s.alive = proc.Alive
	}
	if s.dropCache == nil {
		s.dropCache = dropPageCache
	}
	if s.allocate == nil {
		s.allocate = allocateAhead
	}
	s.SetRetention(opts.MaxBytes, opts.MaxAge)
	s.fsync.Store(opts.Fsync)
	s.SetSegmentSize(opts.SegmentSize)
	seg, err := s.openSegment()
	if err != nil {
		return nil, err
	}
	s.seg = seg
	s.SetCacheBytes(opts.CacheBytes)
	if s.dropCache != nil {
		go s.cache()
	} else {
		close(s.cacheDone)
	}
	go s.run()
	return s, nil
}

// Submit implements ingest.Destination: it adds b's record lines and seqs to the
// next group commit, copying both (the caller may reuse b at once). w.Committed is
// called exactly once for this call; after Close, at once with ingest.ErrClosed.
// While MaxPending bytes wait for the next commit, Submit blocks until the
// committer takes them (a Submit into an empty batch never blocks, however large).
//
// Without fsync, when no commit is in progress, the caller commits: it writes what
// is pending (its own lines and any gathered since the last commit) and calls the
// Waiters, its own included, before Submit returns. A report then goes from the
// reader to the page cache and to its ACK on one goroutine, without waking
// another; only reports that arrive while a write is in progress wait for the
// next one, which the committer goroutine writes (leader/follower group commit).
func (s *Spool) Submit(b *ingest.Batch, w ingest.Waiter) {
	lines, seqs := b.Lines(), b.Seqs()
	s.mu.Lock()
	if len(s.pending.lines) >= s.maxPending && !s.closed {
		if s.obs != nil {
			s.obs.Throttled()
		}
		s.mu.Unlock()
		ingest.SubmitWaits(w)
		s.mu.Lock()
		for len(s.pending.lines) >= s.maxPending && !s.closed {
			s.room.Wait()
		}
	}
	if s.closed {
		s.mu.Unlock()
		w.Committed(seqs, ingest.ErrClosed)
		return
	}
	p := &s.pending
	first := len(p.entries) == 0
	start := len(p.seqs)
	p.lines = append(p.lines, lines...)
	p.seqs = append(p.seqs, seqs...)
	var at time.Time
	if s.obs != nil {
		at = time.Now()
	}
	p.entries = append(p.entries, entry{w: w, start: start, end: len(p.seqs), at: at})
	switch {
	case s.committing:
		// The holder of the commit looks at pending when it is done.
		s.mu.Unlock()
	case s.fsync.Load():
		// An fsync costs milliseconds whatever it carries: the committer gathers
		// every connection's reports into each one (run), so none is led alone.
		s.mu.Unlock()
		if first {
			s.wake()
		}
	default:
		s.commitAsLeader()
	}
}

// commitAsLeader commits what is pending on the calling goroutine. Caller holds mu,
// found no commit in progress and pending not empty; mu is released on return.
func (s *Spool) commitAsLeader() {
	s.committing = true
	// As the committer does (run): the readers already runnable submit first and
	// share this write. Without it, at 100 connections x 32 in flight, spool
	// writes per report rose by half.
	s.commitPending()
	s.mu.Lock()
	s.release()
	s.mu.Unlock()
}

// take swaps the pending batch out for committing. Caller holds mu and the commit.
func (s *Spool) take() batch {
	b := s.pending
	s.pending, s.spare = s.spare, batch{}
	s.room.Broadcast()
	return b
}

// release gives the commit up. What was submitted during the write is left to the
// committer goroutine: a leader is a connection's reader, and its own connection
// must not wait while it writes for everyone else. Caller holds mu.
func (s *Spool) release() {
	s.committing = false
	s.givenUp()
	if len(s.pending.entries) > 0 || s.closed {
		s.wake()
	}
}

func (s *Spool) wake() {
	select {
	case s.signal <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// SetFsync turns fsync after every batch on or off, from the next batch on.
func (s *Spool) SetFsync(on bool) { s.fsync.Store(on) }

// Fsync reports whether writes are fsynced now (spool.fsync, live).
func (s *Spool) Fsync() bool { return s.fsync.Load() }

// SetSegmentSize changes the rotation size; it takes effect at the next rotation
// check (after the next batch). n <= 0 means DefaultSegmentSize.
func (s *Spool) SetSegmentSize(n int64) {
	if n <= 0 {
		n = DefaultSegmentSize
	}
	s.segSize.Store(n)
}

// Close commits everything submitted before it, closes the segment and stops the
// committer. Later calls wait for the first to finish and return its result.
func (s *Spool) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.room.Broadcast()
	s.mu.Unlock()
	if first {
		s.wake()
	}
	<-s.done
	if first {
		close(s.stopRetain)
		close(s.stopCache)
	}
	<-s.cacheDone
	if s.retaining.Load() {
		<-s.retainDone
	}
	return s.closeErr
}

// commitPending is called with s.mu held by the goroutine that set
// s.committing, and returns with it released once the pending batch is written.
// It yields first, so that the connections already runnable submit to the same
// write.
func (s *Spool) commitPending() {
	s.mu.Unlock()
	runtime.Gosched()
	s.mu.Lock()
	b := s.take()
	s.mu.Unlock()
	s.commit(&b)
	b.reset()
	s.spare = b
}

// run is the committer goroutine: it commits what was submitted while another
// commit was in progress (a leader's, or its own), and closes the segment at Close.
func (s *Spool) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for len(s.pending.entries) == 0 || s.committing {
			if s.closed && !s.committing && len(s.pending.entries) == 0 {
				s.mu.Unlock()
				s.closeErr = s.closeSegment()
				return
			}
			s.mu.Unlock()
			<-s.signal
			s.mu.Lock()
		}
		s.committing = true
		// Let the connections made runnable meanwhile (by the ACKs of the last
		// commit) submit first: one write then carries them all. A write's cost
		// is mostly per call, not per byte (ext4 takes its journal handle and
		// updates the inode's times on every write(2): 13 KiB writes go at about
		// a third of the speed of 64 KiB ones), so fewer, larger writes leave more
		// CPU to the connections. It costs nothing when nothing else is runnable,
		// so a lone report is not delayed, and needs no timer.
		s.commitPending()
		s.mu.Lock()
		s.committing = false
		s.givenUp()
		s.mu.Unlock()
	}
}

// givenUp wakes a Mark waiting for the commit. Caller holds mu and has just
// cleared committing.
func (s *Spool) givenUp() {
	if s.marking > 0 {
		s.idle.Broadcast()
	}
}

// Mark returns the segment this process writes and its size at a point between
// two commits: every line before size was written and its Waiters called (an
// ingest.Waiter's Committed, a dedup table's included) before Mark returned; every
// line after it is written later. ok is false after Close, or while no segment is
// open (the last one was abandoned after a failed write). It waits for a commit in
// progress to end (one write, and its fsync in fsync mode "always").
func (s *Spool) Mark() (name string, size int64, ok bool) {
	s.mu.Lock()
	s.marking++
	for s.committing && !s.closed {
		s.idle.Wait()
	}
	s.marking--
	if s.closed || s.seg == nil {
		s.mu.Unlock()
		return "", 0, false
	}
	// No commit in progress, and none starts while mu is held: seg and its size
	// are the last commit's.
	name, size = filepath.Base(s.seg.name), s.seg.size
	s.mu.Unlock()
	return name, size, true
}

func (s *Spool) commit(b *batch) {
	err := s.write(b.lines, len(b.seqs))
	var now time.Time
	if s.obs != nil && err == nil {
		now = time.Now()
	}
	for _, e := range b.entries {
		// The full slice expression keeps a Waiter's append from writing into
		// the next Waiter's seqs.
		if !now.IsZero() {
			s.obs.AckLatency(now.Sub(e.at), e.end-e.start)
		}
		e.w.Committed(b.seqs[e.start:e.end:e.end], err)
	}
	s.rotate()
}

// write appends p to the current segment (creating one if the last was
// abandoned) and fsyncs it if configured. On failure nothing of p stays in the
// segment, if the spool can help it.
func (s *Spool) write(p []byte, records int) error {
	if len(p) == 0 {
		return nil
	}
	if err := s.overLimit(len(p), records); err != nil {
		return err
	}
	if s.seg == nil {
		seg, err := s.openSegment()
		if err != nil {
			return s.failed(nil, err, records, len(p))
		}
		s.seg = seg
	}
	seg := s.seg
	fsync := s.fsync.Load()
	if fsync && !seg.dirSynced {
		if err := s.syncDir(s.dir); err != nil {
			return s.failed(nil, fmt.Errorf("spool: fsync directory %s: %w", s.dir, err), records, len(p))
		}
		seg.dirSynced = true
	}
	s.preallocate(seg, len(p))
	start := time.Now()
	n, err := seg.f.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	written := time.Now()
	if err != nil {
		return s.failed(seg, fmt.Errorf("spool: write %s: %w", seg.name, err), records, len(p))
	}
	var syncTime time.Duration
	if fsync {
		if err := seg.f.Sync(); err != nil {
			return s.failed(seg, fmt.Errorf("spool: fsync %s: %w", seg.name, err), records, len(p))
		}
		syncTime = time.Since(written)
	}
	seg.size += int64(len(p))
	s.written.Add(int64(len(p)))
	s.dirBytes.Add(int64(len(p)))
	if s.obs != nil {
		s.obs.BatchWritten(records, len(p), written.Sub(start), syncTime)
	}
	return nil
}

// failed records a refused batch and, when seg may hold part of it, truncates
// seg back to its last good size: the refused records will be sent again, and
// a copy left behind would be a duplicate at best, a torn line at worst. A
// segment that cannot be truncated is abandoned, and the next batch goes to a
// new one, so that the torn line stays the last line of its file.
func (s *Spool) failed(seg *segment, err error, records, bytes int) error {
	if s.obs != nil {
		s.obs.WriteFailed(err)
	}
	// A full disk fails every batch; one log line a second says as much.
	if now := time.Now(); now.Sub(s.lastErrLog) >= time.Second {
		s.log.Error("spool write failed, records refused", zap.Error(err),
			zap.Int("records", records), zap.Int("bytes", bytes), zap.Int("failures_not_logged", s.suppressed))
		s.lastErrLog, s.suppressed = now, 0
	} else {
		s.suppressed++
	}
	if seg == nil {
		return err
	}
	// The truncate also gives back the blocks allocated ahead (prealloc.go).
	seg.alloc = seg.size
	if terr := seg.f.Truncate(seg.size); terr != nil {
		s.log.Error("cannot truncate the failed write away, abandoning the segment",
			zap.String("segment", seg.name), zap.Int64("good_size", seg.size), zap.Error(terr))
		if cerr := seg.f.Close(); cerr != nil {
			s.log.Error("closing the abandoned segment failed", zap.String("segment", seg.name), zap.Error(cerr))
		}
		s.seg = nil
	}
	return err
}
