package daemon

import (
	"context"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/upload"
)

// expireInterval is how often abandoned partial uploads are looked for.
const expireInterval = time.Minute

// startUploads opens the upload store when uploads.enabled is set (nil
// otherwise) and runs its upkeep on a goroutine: first the files a previous
// process published but did not announce, then the expiry of abandoned partial
// uploads. stopUploads ends the upkeep; the destination must outlive it.
func (d *Daemon) startUploads(cfg *config.Config) (*upload.Store, error) {
	u := cfg.Uploads
	if !u.Enabled {
		return nil, nil
	}
	dir := u.Dir
	if dir == "" {
		dir = filepath.Join(cfg.Spool.Dir, "uploads")
	}
	fsync := func() bool { return cfg.Spool.Fsync == config.FsyncAlways }
	if sp := d.dest.spool; sp != nil {
		fsync = sp.Fsync // live: a reload of spool.fsync applies to uploads too
	}
	store, err := upload.Open(upload.Options{Dir: dir, Fsync: fsync, MaxFileSize: u.MaxFileSize, ClientQuota: u.ClientQuota,
		TotalQuota: u.TotalQuota, Expiry: u.Expiry, Announce: (&upload.Announcer{Dest: d.dest.dest}).Announce,
		Observer: d.met.Uploads(u.ClientQuota, u.TotalQuota)})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.stopUploads = func() { cancel(); <-done }
	log := d.log.Named("uploads")
	go func() {
		defer close(done)
		if err := store.AnnouncePending(); err != nil {
			log.Warn("published files not announced; the next start or a commit retries", zap.Error(err))
		}
		t := time.NewTicker(expireInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n := store.Expire(); n > 0 {
					log.Info("abandoned partial uploads removed", zap.Int("count", n), zap.Duration("expiry", u.Expiry))
				}
			}
		}
	}()
	log.Info("uploads enabled", zap.String("dir", dir), zap.Int64("max_in_flight", u.MaxInFlight))
	return store, nil
}
