package daemon

import (
	"context"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/objstore"
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
	opts := upload.Options{Dir: dir, Fsync: fsync, MaxFileSize: u.MaxFileSize, ClientQuota: u.ClientQuota,
		TotalQuota: u.TotalQuota, Expiry: u.Expiry, Announce: (&upload.Announcer{Dest: d.dest.dest}).Announce,
		Observer: d.met.Uploads(u.ClientQuota, u.TotalQuota)}
	kick := make(chan struct{}, 1)
	if cfg.InBucket() {
		opts.Queue = true
		opts.Queued = func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}
	store, err := upload.Open(opts)
	if err != nil {
		return nil, err
	}
	log := d.log.Named("uploads")
	ctx, cancel := context.WithCancel(context.Background())
	placing := func() {}
	if cfg.InBucket() {
		if placing, err = d.startPlacing(ctx, cfg, dir, store, kick, log); err != nil {
			cancel()
			return nil, err
		}
	}
	done := make(chan struct{})
	d.stopUploads = func() { cancel(); <-done; placing() }
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
	fields := []zap.Field{zap.String("dir", dir), zap.Int64("max_in_flight", u.MaxInFlight)}
	if cfg.InBucket() {
		fields = append(fields, zap.String("bucket", u.Bucket))
	}
	log.Info("uploads enabled", fields...)
	return store, nil
}

// startPlacing connects to NATS in the background and runs the actor that puts
// finished files into uploads.bucket (internal/objstore) until ctx ends; the
// returned func waits for it and closes the connection. The destination must
// outlive it: it announces the files.
func (d *Daemon) startPlacing(ctx context.Context, cfg *config.Config, dir string, store *upload.Store, kick <-chan struct{}, log *zap.Logger) (wait func(), err error) {
	u := cfg.Uploads
	bucket, err := jetstream.NewBucket(jetStreamOptions(cfg, log), jetstream.BucketOptions{Name: u.Bucket,
		Replicas: u.BucketReplicas, MaxBytes: u.BucketMaxBytes, TTL: u.BucketTTL})
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	olog := log.Named("objstore")
	obs := d.met.ObjStore() // registered before Ready: the metrics are there from the first scrape
	go func() {
		defer close(done)
		err := objstore.Run(ctx, objstore.Options{Dir: dir, Bucket: bucket, Queue: store, Kick: kick, Logger: olog, Observer: obs})
		if err != nil {
			olog.Error("finished files cannot be put into the object store: they stay in the uploads directory", zap.Error(err))
		}
	}()
	return func() { <-done; bucket.Close() }, nil
}
