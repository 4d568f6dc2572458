package forward

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/dirlock"
	"github.com/hawk-agents/hawk/internal/proc"
	"github.com/hawk-agents/hawk/internal/spool"
)

// Publisher puts record lines into the stream (internal/jetstream Publisher): it
// returns once every line was acknowledged, or with an error after which the lines
// past the first acked are published again. dups counts the acked lines the
// stream already held. An error whose Timeout method returns true says the stream
// stopped acknowledging for the Publisher's timeout.
type Publisher interface {
	Publish(ctx context.Context, lines [][]byte) (acked, dups int, err error)
}

// Observer receives the forwarder's measurements; its methods run on the
// forwarder's goroutine.
type Observer interface {
	// Forwarded: n records were acknowledged by the stream, dups of them as
	// duplicates (already there: a resend, or a republish after a crash).
	Forwarded(n, dups int)
	// Failed: a publish failed; the same records are published again after
	// RetryAfter.
	Failed(err error)
	// Lag: records in the spool not yet forwarded, and how long ago the oldest of
	// them was received (0 when none).
	Lag(records int64, age time.Duration)
}

type nopObserver struct{}

func (nopObserver) Forwarded(int, int)       {}
func (nopObserver) Failed(error)             {}
func (nopObserver) Lag(int64, time.Duration) {}

// Options configure Run.
type Options struct {
	Dir       string // the spool directory
	Publisher Publisher
	Logger    *zap.Logger
	Observer  Observer           // optional
	Alive     func(pid int) bool // whether a process may still write its newest segment; nil means proc.Alive
	Now       func() time.Time   // nil means time.Now

	Poll         time.Duration // how often the directory is looked at when all is forwarded; default 50ms
	RetryAfter   time.Duration // wait after a failed publish; default 1s
	SaveInterval time.Duration // the position is saved at most this often while forwarding; default 100ms
	MaxLines     int           // records per publish at most; default 4096
	// PublishTimeout is the Publisher's wait for an acknowledgement
	// (jetstream.publish_timeout). Publishes start at 256 records; one that took
	// less than a quarter of it lets the next carry twice the records, up to
	// MaxLines; one that took more than half of it, or timed out, halves them
	// (slow.go). 0: every success doubles them.
	PublishTimeout time.Duration
	ReadSize       int // bytes read from a segment at once (grown for a longer line); default 4 MiB
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Alive == nil {
		o.Alive = proc.Alive
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = 100 * time.Millisecond
	}
	if o.MaxLines <= 0 {
		o.MaxLines = 4096
	}
	if o.ReadSize <= 0 {
		o.ReadSize = 4 << 20
	}
}

// forwarder is the state Run owns.
type forwarder struct {
	o      Options
	log    *zap.Logger
	pos    *position
	dirty  bool      // pos changed since the last save
	saved  time.Time // when pos was last saved
	counts map[string]*lineCount
	buf    []byte
	pace   pace
}

// Run forwards dir's segments until ctx ends, then saves the position and returns
// nil; it returns an error only when it cannot start (the position is unreadable).
// It first waits for the directory's lock (one forwarder per directory: the package
// doc), so during an upgrade the new process's Run starts when the old one's ends.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	lf, err := dirlock.Wait(ctx, filepath.Join(o.Dir, LockFile), o.Poll)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("forward: %w", err)
	}
	defer lf.Close()
	pos, err := loadPosition(o.Dir)
	if err != nil {
		return err
	}
	f := &forwarder{o: o, log: o.Logger, pos: pos, saved: o.Now(), counts: map[string]*lineCount{},
		pace: newPace(o.MaxLines, o.PublishTimeout)}
	f.log.Info("forwarding the spool to jetstream", zap.String("dir", o.Dir), zap.Int("segments_in_progress", len(pos.Offsets)))
	defer f.save()
	var lastErr time.Time
	for {
		progressed, err := f.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := time.Duration(0)
		switch {
		case err != nil:
			f.o.Observer.Failed(err)
			if now := f.o.Now(); now.Sub(lastErr) >= 10*time.Second {
				lastErr = now
				f.log.Warn("forwarding to jetstream failed: retrying (reports stay in the spool)", zap.Error(err))
			}
			wait = f.o.RetryAfter
		case !progressed:
			wait = f.o.Poll
		}
		if wait <= 0 {
			f.saveIfDue()
			continue
		}
		f.save()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// saveIfDue saves a changed position once SaveInterval has passed since the last save.
func (f *forwarder) saveIfDue() {
	if f.dirty && f.o.Now().Sub(f.saved) >= f.o.SaveInterval {
		f.save()
	}
}

func (f *forwarder) save() {
	if !f.dirty {
		return
	}
	if err := f.pos.save(f.o.Dir); err != nil {
		f.log.Error("cannot save the forward position: after a restart more is published again (the stream drops the copies within its duplicate window)", zap.Error(err))
		return
	}
	f.dirty = false
	f.saved = f.o.Now()
}

// pass measures the lag, then publishes at most one read of every segment that
// has unsent lines, oldest first; progressed tells whether anything moved.
func (f *forwarder) pass(ctx context.Context) (progressed bool, err error) {
	segs, err := spool.Segments(f.o.Dir)
	if err != nil {
		return false, err
	}
	if n := len(f.pos.Done) + len(f.pos.Offsets); n > 0 {
		f.pos.prune(segs)
		if len(f.pos.Done)+len(f.pos.Offsets) != n {
			f.dirty = true
		}
	}
	newest := map[int]string{}
	for _, g := range segs {
		newest[g.PID] = g.Name
	}
	work := f.measure(segs, newest)
	for _, w := range work {
		moved, err := f.forward(ctx, w)
		progressed = progressed || moved
		if err != nil {
			return progressed, err
		}
	}
	return progressed, nil
}

// unsent is one segment with lines to publish.
type unsent struct {
	name   string
	closed bool  // no process writes to it any more
	end    int64 // the end of its last whole line when measured
}

// measure counts the unsent records of every segment not done (marking done those
// closed and forwarded to their end) and reports the lag.
func (f *forwarder) measure(segs []spool.Segment, newest map[int]string) []unsent {
	var work []unsent
	var records int64
	var oldest time.Time
	for _, g := range segs {
		if f.pos.isDone(g.Name) {
			delete(f.counts, g.Name)
			continue
		}
		// Closed is decided before the size is read: once closed, that size is final.
		closed := newest[g.PID] != g.Name || !f.o.Alive(g.PID)
		path := filepath.Join(f.o.Dir, g.Name)
		fi, err := os.Stat(path)
		if err != nil {
			continue // removed meanwhile
		}
		off := f.pos.Offsets[g.Name]
		if off > fi.Size() {
			// Truncated after a failed write: the lines past the end were NACKed and
			// come again, written from the new end on.
			f.pos.Offsets[g.Name] = fi.Size()
			off, f.dirty = fi.Size(), true
		}
		c := f.counts[g.Name]
		if c == nil {
			c = &lineCount{}
			f.counts[g.Name] = c
		}
		c.from(off, fi.Size())
		if err := c.extend(path, fi.Size()); err != nil {
			f.log.Warn("cannot read a segment to forward it", zap.String("segment", g.Name), zap.Error(err))
			continue
		}
		if c.lines == 0 {
			if closed {
				f.pos.markDone(g.Name)
				delete(f.counts, g.Name)
				f.dirty = true
			}
			continue
		}
		records += c.lines
		if t, ok := receivedAt(path, off); ok && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
		work = append(work, unsent{name: g.Name, closed: closed, end: c.counted})
	}
	var age time.Duration
	if !oldest.IsZero() {
		age = max(f.o.Now().Sub(oldest), 0)
	}
	f.o.Observer.Lag(records, age)
	return work
}

// forward publishes the whole lines of one read of w from its offset.
func (f *forwarder) forward(ctx context.Context, w unsent) (bool, error) {
	off := f.pos.Offsets[w.name]
	fh, err := os.Open(filepath.Join(f.o.Dir, w.name))
	if err != nil {
		return false, nil // removed meanwhile
	}
	defer fh.Close()
	size := int(min(w.end-off, int64(f.o.ReadSize)))
	if cap(f.buf) < size {
		f.buf = make([]byte, size)
	}
	buf := f.buf[:size]
	if _, err := fh.ReadAt(buf, off); err != nil {
		return false, err
	}
	lines := splitLines(buf)
	if len(lines) == 0 {
		// One line longer than ReadSize: read it whole next time.
		f.o.ReadSize *= 2
		return true, nil
	}
	moved := false
	for len(lines) > 0 {
		n := min(len(lines), f.pace.lines)
		start := f.o.Now()
		acked, dups, err := f.o.Publisher.Publish(ctx, lines[:n])
		if acked > 0 {
			// What the stream acknowledged stays forwarded, even when a later
			// line of the same publish failed.
			for _, l := range lines[:acked] {
				off += int64(len(l))
			}
			f.counts[w.name].sent(off, int64(acked))
			f.pos.Offsets[w.name] = off
			f.dirty, moved = true, true
			f.o.Observer.Forwarded(acked, dups)
			// A read holds many publishes when the stream is slow: the position is
			// saved within it, so that a crash publishes again only what the stream
			// acknowledged lately, well within its duplicate window.
			f.saveIfDue()
		}
		if err != nil {
			if isTimeout(err) {
				f.pace.timedOut(acked)
			}
			return moved, err
		}
		f.pace.succeeded(n, dups, f.o.Now().Sub(start))
		lines = lines[n:]
	}
	return moved, nil
}
