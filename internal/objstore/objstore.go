package objstore

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/dirlock"
	"github.com/hawk-agents/hawk/internal/upload"
)

// LockFile is the lock of the uploads directory's one actor.
const LockFile = "bucket.lock"

// Bucket is where files go (internal/jetstream Bucket).
type Bucket interface {
	Name() string
	Put(ctx context.Context, name string, meta map[string]string, size int64, sum []byte, r io.Reader) (existed bool, err error)
}

// Queue is the upload store's side (internal/upload Store with Options.Queue).
type Queue interface {
	Backlog(rescan bool) []upload.FileRecord
	Placed(rec upload.FileRecord, bucket, object string) error
}

// Reasons a file was not placed, the label of the failures metric.
const (
	ReasonUnavailable = "unavailable" // NATS or JetStream did not answer, or refused the put
	ReasonNotDurable  = "not_durable" // the bucket is not durable (jetstream.require_durable)
	ReasonConflict    = "conflict"    // the bucket holds other bytes under the name
	ReasonDigest      = "digest"      // the local file is not what its sha256 says
	ReasonRead        = "read"        // the local file cannot be read
	ReasonAnnounce    = "announce"    // in the bucket, but its record is not durable
)

// Reasons lists every reason, for metrics.
var Reasons = []string{ReasonUnavailable, ReasonNotDurable, ReasonConflict, ReasonDigest, ReasonRead, ReasonAnnounce}

// Observer receives measurements; its methods run on Run's goroutine.
type Observer interface {
	// Placed: a file of size bytes is in the bucket and announced; existed says it
	// was found there (put before a crash).
	Placed(size int64, existed bool)
	Failed(reason string)
	// Backlog: files published and not yet placed, their bytes, and how long ago
	// the oldest was published (0 when none).
	Backlog(files int, bytes int64, oldest time.Duration)
}

type nopObserver struct{}

func (nopObserver) Placed(int64, bool)                {}
func (nopObserver) Failed(string)                     {}
func (nopObserver) Backlog(int, int64, time.Duration) {}

// Options configure Run.
type Options struct {
	Dir      string // the uploads directory (its lock)
	Bucket   Bucket
	Queue    Queue
	Kick     <-chan struct{} // a file was published: look at the backlog now
	Logger   *zap.Logger
	Observer Observer
	Now      func() time.Time

	MinBackoff time.Duration // first wait after a failure; default 1s
	MaxBackoff time.Duration // longest wait; default 1m
	Rescan     time.Duration // how often the directory is read again; default 1m
	// PutTimeout bounds one put: PutTimeout plus a second per MinRate bytes of
	// the file; defaults 30s and 1 MiB.
	PutTimeout time.Duration
	MinRate    int64
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Minute, o.MinBackoff)
	}
	if o.Rescan <= 0 {
		o.Rescan = time.Minute
	}
	if o.PutTimeout <= 0 {
		o.PutTimeout = 30 * time.Second
	}
	if o.MinRate <= 0 {
		o.MinRate = 1 << 20
	}
}

// retry is a file's backoff.
type retry struct {
	at   time.Time
	wait time.Duration
}

// Run places the queue's files until ctx ends; it returns an error only when it
// cannot take the directory's lock.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	lf, err := dirlock.Wait(ctx, filepath.Join(o.Dir, LockFile), 50*time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("objstore: %w", err)
	}
	defer lf.Close()
	log := o.Logger
	log.Info("putting finished files into the object store", zap.String("bucket", o.Bucket.Name()), zap.String("dir", o.Dir))
	retries := map[string]*retry{}
	rescanAt := time.Time{} // at once: another process may have published meanwhile
	var lastWarn time.Time
	for {
		now := o.Now()
		rescan := !now.Before(rescanAt)
		if rescan {
			rescanAt = now.Add(o.Rescan)
		}
		backlog := o.Queue.Backlog(rescan)
		observeBacklog(o, backlog)
		next := rescanAt
		for _, rec := range backlog {
			if ctx.Err() != nil {
				return nil
			}
			r := retries[rec.Path]
			if r != nil && o.Now().Before(r.at) {
				next = minTime(next, r.at)
				continue
			}
			existed, reason, err := place(ctx, o, rec)
			if err == nil {
				delete(retries, rec.Path)
				o.Observer.Placed(rec.Size, existed)
				log.Debug("file placed", zap.String("object", Name(rec)), zap.Int64("size", rec.Size), zap.Bool("existed", existed))
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			o.Observer.Failed(reason)
			if r == nil {
				r = &retry{wait: o.MinBackoff}
				retries[rec.Path] = r
			} else {
				r.wait = min(2*r.wait, o.MaxBackoff)
			}
			r.at = o.Now().Add(r.wait)
			next = minTime(next, r.at)
			if reason != ReasonUnavailable || o.Now().Sub(lastWarn) >= 10*time.Second {
				lastWarn = o.Now()
				log.Warn("a finished file is not in the object store yet: it stays in the uploads directory and is tried again",
					zap.String("reason", reason), zap.String("object", Name(rec)), zap.String("client_id", rec.ClientID),
					zap.String("upload_id", rec.UploadID), zap.Duration("retry_in", r.wait), zap.Error(err))
			}
			if reason == ReasonUnavailable || reason == ReasonNotDurable {
				// The next files would fail alike: each waits its own turn.
				for _, other := range backlog {
					if retries[other.Path] == nil {
						retries[other.Path] = &retry{at: r.at, wait: r.wait}
					}
				}
			}
		}
		for p := range retries { // placed by another process, or removed
			if !inBacklog(backlog, p) {
				delete(retries, p)
			}
		}
		observeBacklog(o, o.Queue.Backlog(false))
		t := time.NewTimer(max(next.Sub(o.Now()), time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.Kick:
		case <-t.C:
		}
		t.Stop()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func inBacklog(backlog []upload.FileRecord, path string) bool {
	for _, r := range backlog {
		if r.Path == path {
			return true
		}
	}
	return false
}

func observeBacklog(o Options, backlog []upload.FileRecord) {
	var bytes int64
	var oldest time.Time
	for _, r := range backlog {
		bytes += r.Size
		if oldest.IsZero() || r.Published.Before(oldest) {
			oldest = r.Published
		}
	}
	var age time.Duration
	if !oldest.IsZero() {
		age = max(o.Now().Sub(oldest), 0)
	}
	o.Observer.Backlog(len(backlog), bytes, age)
}
