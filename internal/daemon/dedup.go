package daemon

import (
	"context"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/proc"
)

// followInterval is how often a process started by an upgrade reads the new lines
// of its parent's segments while the parent drains.
const followInterval = 2 * time.Millisecond

// startDedup rebuilds the dedup windows from the spool's tail and, in a process
// started by an upgrade, follows the parent's segments until it exits; both on a
// goroutine, so readiness does not wait: reports do (the table's gate opens once
// the rebuild and the first pass over the parent's segments are done).
// stopDedup ends the following.
func (d *Daemon) startDedup(cfg *config.Config, began time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.stopDedup = func() { cancel(); <-done }
	parent := 0
	parentGone := make(chan struct{})
	if d.upg.Inherited() {
		parent = os.Getppid()
		// tableflip's word that the parent exited (a pipe, so a reused pid cannot
		// fool it); the pid check is the fallback.
		go func() {
			if d.upg.WaitForParent(ctx) == nil || ctx.Err() == nil {
				close(parentGone)
			}
		}()
	}
	alive := func(pid int) bool {
		select {
		case <-parentGone:
			return false
		default:
			return proc.Alive(pid)
		}
	}
	log := d.log.Named("dedup")
	go func() {
		defer close(done)
		defer d.dedup.SetReady() // whatever happens, reports must not wait forever
		st, segs, err := d.dedup.Rebuild(cfg.Spool.Dir, cfg.Dedup.RebuildBytes)
		if err != nil {
			log.Error("dedup rebuild failed: resends of reports stored before this start may be stored again", zap.Error(err))
		}
		log.Info("dedup windows rebuilt from the spool", zap.Int("segments", st.Segments), zap.Int64("bytes", st.Bytes),
			zap.Int64("records", st.Lines), zap.Int64("bad_lines", st.Bad), zap.Int("clients", st.Clients),
			zap.Duration("took", st.Took), zap.Float64("mb_per_s", st.MBPerSecond()))
		if parent <= 1 || err != nil {
			d.dedup.SetReady()
			log.Info("dedup ready", zap.Duration("since_start", time.Since(began)))
			return
		}
		fs, err := d.dedup.Follow(ctx, cfg.Spool.Dir, parent, segs, followInterval, alive, func() {
			d.dedup.SetReady()
			log.Info("dedup ready", zap.Duration("since_start", time.Since(began)), zap.Int("following_pid", parent))
		})
		if err != nil {
			log.Error("following the previous process's spool failed", zap.Int("parent_pid", parent), zap.Error(err))
		}
		log.Info("stopped following the previous process's spool", zap.Int("parent_pid", parent),
			zap.Int64("bytes", fs.Bytes), zap.Int64("records", fs.Lines), zap.Duration("took", fs.Took))
	}()
}
