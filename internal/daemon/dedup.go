package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/proc"
)

// followInterval is how often a process started by an upgrade reads the new lines
// of its parent's segments while the parent drains.
const followInterval = 2 * time.Millisecond

// parentCheckEvery is how often the follower reads whether the parent runs when
// tableflip has not said it exited: a pipe held open past the parent's exit (a
// process it started keeping the descriptor) then delays the follower's last pass
// by that much at most.
const parentCheckEvery = 50 * time.Millisecond

// startDedup fills the dedup windows, on a goroutine, so readiness does not wait:
// reports do (the table's gate opens once it is filled and a first pass over an
// upgrading parent's segments is done). A process started by an upgrade receives
// its parent's table (passDedup) and follows the parent's segments from where the
// table was taken; without one (a parent that passed none, a restart, a snapshot
// short, damaged or late) it rebuilds the windows from the spool's tail. Then, in
// a process started by an upgrade, it follows the parent's segments until the
// parent exits. stopDedup ends the following.
func (d *Daemon) startDedup(cfg *config.Config, began time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.stopDedup = func() { cancel(); <-done }
	d.dedupDone = done
	parent := 0
	parentGone := make(chan struct{})
	log := d.log.Named("dedup")
	var snap *os.File
	if d.upg.Inherited() {
		parent = os.Getppid()
		// tableflip's word that the parent exited (a pipe, so a reused pid cannot
		// fool it); the pid check is the fallback.
		go func() {
			if d.upg.WaitForParent(ctx) == nil || ctx.Err() == nil {
				close(parentGone)
			}
		}()
		// Claimed here, before Ready: tableflip closes unclaimed files then.
		var err error
		if snap, err = d.upg.InheritedFile(dedupTableName); err != nil {
			log.Warn("the previous process's dedup windows not inherited: rebuilding them from the spool", zap.Error(err))
		}
	}
	alive := parentAlive(parentGone, parentCheckEvery, proc.Alive)
	go func() {
		defer close(done)
		defer d.dedup.SetReady() // whatever happens, reports must not wait forever
		segs, received := d.receiveDedup(snap, cfg.Spool.Dir, parent, log)
		var err error
		if !received {
			var st dedup.RebuildStats
			st, segs, err = d.dedup.Rebuild(cfg.Spool.Dir, cfg.Dedup.RebuildBytes)
			if err != nil {
				log.Error("dedup rebuild failed: resends of reports stored before this start may be stored again", zap.Error(err))
			}
			log.Info("dedup windows rebuilt from the spool", zap.Int("segments", st.Segments), zap.Int64("bytes", st.Bytes),
				zap.Int64("records", st.Lines), zap.Int64("bad_lines", st.Bad), zap.Int("clients", st.Clients),
				zap.Duration("took", st.Took), zap.Float64("mb_per_s", st.MBPerSecond()))
		}
		if parent <= 1 || err != nil {
			d.dedup.SetReady()
			log.Info("dedup ready", zap.Duration("since_start", time.Since(began)))
			return
		}
		following := time.Now()
		fs, err := d.dedup.Follow(ctx, cfg.Spool.Dir, parent, segs, followInterval, alive, func() {
			d.dedup.SetReady()
			log.Info("dedup ready", zap.Duration("since_start", time.Since(began)), zap.Int("following_pid", parent),
				zap.Duration("first_pass", time.Since(following)))
		})
		if err != nil {
			log.Error("following the previous process's spool failed", zap.Int("parent_pid", parent), zap.Error(err))
		}
		log.Info("stopped following the previous process's spool", zap.Int("parent_pid", parent),
			zap.Int64("bytes", fs.Bytes), zap.Int64("records", fs.Lines), zap.Duration("took", fs.Took))
	}()
}

// dedupTableName is the file that carries the dedup windows to the new process
// of an upgrade through tableflip: the read end of a pipe.
const dedupTableName = "hawk-dedup-table"

// dedupTableTimeout bounds the passing of the windows at both ends: a new process
// that has not received them by then rebuilds them from the spool (which takes
// 0.2 to 1.3 s for the default 256 MiB tail on a busy 2-core machine).
const dedupTableTimeout = 5 * time.Second

// receiveDedup applies the windows the parent passed in f (nil: none) and
// returns, for Follow, the parent's segments from where the parent took them.
// received is false, and the table unchanged, when there is nothing usable.
func (d *Daemon) receiveDedup(f *os.File, dir string, parent int, log *zap.Logger) (segs []dedup.SegmentFile, received bool) {
	if f == nil {
		return nil, false
	}
	defer f.Close()
	if parent <= 1 {
		return nil, false
	}
	began := time.Now()
	fail := func(err error) ([]dedup.SegmentFile, bool) {
		log.Warn("the previous process's dedup windows not received: rebuilding them from the spool", zap.Error(err),
			zap.Duration("after", time.Since(began)))
		return nil, false
	}
	r, err := pollable(f)
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	if err := r.SetReadDeadline(began.Add(dedupTableTimeout)); err != nil {
		return fail(err)
	}
	s, err := dedup.ReadSnapshot(r)
	if err != nil {
		return fail(err)
	}
	if s.Window < d.dedup.Window() {
		return fail(fmt.Errorf("their dedup.window %d is smaller than this process's %d", s.Window, d.dedup.Window()))
	}
	if segs, err = dedup.FollowFrom(dir, parent, s.Mark); err != nil {
		return fail(err)
	}
	d.dedup.ApplySnapshot(s)
	log.Info("dedup windows received from the previous process", zap.Int("clients", s.Clients()), zap.Int64("bytes", s.Bytes),
		zap.String("segment", s.Mark.Segment), zap.Int64("offset", s.Mark.Offset), zap.Duration("took", time.Since(began)))
	return segs, true
}

// pollable returns a duplicate of f in non-blocking mode, so that a read deadline
// holds: an inherited descriptor comes blocking (exec passes it so).
func pollable(f *os.File) (*os.File, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	cerr := raw.Control(func(fd uintptr) {
		var dup int
		if dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.SetNonblock(dup, true); err != nil {
			unix.Close(dup)
			return
		}
		nf = os.NewFile(uintptr(dup), f.Name())
	})
	if cerr != nil {
		return nil, cerr
	}
	return nf, err
}

// passDedup passes this process's dedup windows to the new process of the
// upgrade about to start (through pass, upgrade.PassFile, under dedupTableName),
// so that it follows this process's spool from the mark instead of reading its
// tail: a pipe, written on a goroutine as the new process reads it. The mark is
// taken between two spool commits, before the windows are copied: every line
// before it is in them, every line after it the new process reads. A pipe
// with nothing in it is passed when the table cannot be passed (a JetStream
// destination; the rebuild or the following of this process's own parent not
// done), so that the new process does not take an older pipe for this one's.
func (d *Daemon) passDedup(pass func(name string, f *os.File) error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		d.log.Warn("the new process rebuilds its dedup windows from the spool", zap.Error(err))
		return
	}
	defer pr.Close() // the upgrader holds its own duplicate
	if err := pass(dedupTableName, pr); err != nil {
		pw.Close()
		d.log.Warn("the new process rebuilds its dedup windows from the spool", zap.Error(err))
		return
	}
	m, ok := d.dedupMark()
	if !ok {
		pw.Close()
		return
	}
	go func() {
		defer pw.Close()
		pw.SetWriteDeadline(time.Now().Add(dedupTableTimeout))
		st, err := d.dedup.WriteSnapshot(pw, m)
		if err != nil {
			d.log.Warn("passing the dedup windows to the new process failed: it rebuilds them from the spool", zap.Error(err))
			return
		}
		d.log.Info("dedup windows passed to the new process", zap.Int("clients", st.Clients), zap.Int64("bytes", st.Bytes),
			zap.Duration("took", st.Took))
	}()
}

// dedupWait bounds how long an upgrade waits for this process's own dedup
// work to end: the following of its parent ends within a follow interval of the
// parent's exit, and an upgrade starts only after that exit.
const dedupWait = 100 * time.Millisecond

// dedupMark is the spool's mark, once the table holds everything the spool
// told it; ok is false when it does not (yet) or there is no spool.
func (d *Daemon) dedupMark() (dedup.Mark, bool) {
	if d.dest.spool == nil || d.dedupDone == nil {
		return dedup.Mark{}, false
	}
	t := time.NewTimer(dedupWait)
	defer t.Stop()
	select {
	case <-d.dedupDone:
	case <-t.C:
		d.log.Info("the new process rebuilds its dedup windows from the spool: this process is still reading its own")
		return dedup.Mark{}, false
	}
	name, off, ok := d.dest.spool.Mark()
	return dedup.Mark{Segment: name, Offset: off}, ok
}

// parentAlive is Follow's word on whether the parent runs: false once gone is
// closed (tableflip's pipe: at once, and a reused pid cannot fool it), otherwise
// check's, asked at most every interval. The pid, read from /proc, is only the
// fallback and costs tens of µs against a parent busy handing over thousands of
// connections, so it is not read at every one of Follow's passes. Follow calls it
// from one goroutine.
func parentAlive(gone <-chan struct{}, every time.Duration, check func(pid int) bool) func(pid int) bool {
	var checked time.Time
	return func(pid int) bool {
		select {
		case <-gone:
			return false
		default:
		}
		if !checked.IsZero() && time.Since(checked) < every {
			return true
		}
		checked = time.Now()
		return check(pid)
	}
}
