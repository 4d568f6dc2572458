package jetstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// BucketOptions describe the Object Store bucket finished uploads go to
// (uploads.bucket*). Replicas, MaxBytes and TTL apply when the bucket is created;
// a bucket that exists is used as it is.
type BucketOptions struct {
	Name     string
	Replicas int           // 0: 1
	MaxBytes int64         // 0: no limit
	TTL      time.Duration // 0: objects never expire
}

// Errors of Bucket.Put that trying again does not cure by itself.
var (
	// ErrObjectConflict: the bucket holds other bytes under the name. They are
	// never replaced: a record may already say they are there.
	ErrObjectConflict = errors.New("jetstream: the bucket holds another object under this name")
	// ErrNotDurable: the bucket is not durable and jetstream.require_durable is set.
	ErrNotDurable = errors.New("jetstream: the bucket is not durable")
)

// Bucket puts files into a JetStream Object Store bucket, each under a name the
// caller derives from what the file is, so that putting it again finds it there.
// Like a Publisher it connects in the background: Put fails until NATS answers.
type Bucket struct {
	opts  Options
	bopts BucketOptions
	log   *zap.Logger
	nc    *nats.Conn
	js    jetstream.JetStream

	mu    sync.Mutex
	store jetstream.ObjectStore // bound (and checked) at the first Put that reached JetStream
}

// NewBucket starts connecting to NATS with opts (URLs, credentials, TLS,
// ConnectTimeout, RequireDurable, SyncAlways, Name, Logger are used). It fails only
// on a bad option.
func NewBucket(opts Options, b BucketOptions) (*Bucket, error) {
	if opts.Subject == "" {
		opts.Subject = ClientIDPlaceholder // unused here; defaults() wants one
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	bk := &Bucket{opts: opts, bopts: b, log: opts.Logger}
	if bk.log == nil {
		bk.log = zap.NewNop()
	}
	var err error
	if bk.nc, err = connectBackground(opts, bk.log, "finished files wait in the uploads directory"); err != nil {
		return nil, err
	}
	if bk.js, err = jetstream.New(bk.nc); err != nil {
		bk.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return bk, nil
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.bopts.Name }

// Close closes the NATS connection; a Put in progress fails.
func (b *Bucket) Close() { b.nc.Close() }

// Put stores size bytes from r, whose SHA-256 is sum, under name, unless the
// bucket holds that object already (same size and digest: a put confirmed before
// a crash), which it reports as existed. The object's digest, computed by the
// library over what r gave, must be sum; r should fail its last read when the
// bytes are not what sum says, so that no wrong object is ever complete in the
// bucket (the library then purges the chunks it sent). An object of that name
// with another digest is not replaced: ErrObjectConflict.
func (b *Bucket) Put(ctx context.Context, name string, meta map[string]string, size int64, sum []byte, r io.Reader) (existed bool, err error) {
	if !b.nc.IsConnected() {
		return false, ErrNotConnected
	}
	store, err := b.bind(ctx)
	if err != nil {
		return false, err
	}
	info, err := store.GetInfo(ctx, name)
	switch {
	case err == nil:
		if err := same(info, size, sum); err != nil {
			return false, fmt.Errorf("%w: %s: %v", ErrObjectConflict, name, err)
		}
		return true, nil
	case !errors.Is(err, jetstream.ErrObjectNotFound):
		// Looked up again at the next put: the bucket may have been deleted
		// meanwhile (it is made again then).
		b.unbind()
		return false, fmt.Errorf("jetstream: bucket %s: %w", b.bopts.Name, err)
	}
	info, err = store.Put(ctx, jetstream.ObjectMeta{Name: name, Metadata: meta}, r)
	if err != nil {
		return false, fmt.Errorf("jetstream: put %s into bucket %s: %w", name, b.bopts.Name, err)
	}
	if err := same(info, size, sum); err != nil {
		return false, fmt.Errorf("jetstream: put %s into bucket %s: %v", name, b.bopts.Name, err)
	}
	return false, nil
}

// same says how info differs from size bytes of SHA-256 sum, or nil. The Object
// Store's digest is "SHA-256=" and the base64url of the hash.
func same(info *jetstream.ObjectInfo, size int64, sum []byte) error {
	if !strings.HasPrefix(info.Digest, "SHA-256=") {
		return fmt.Errorf("digest %q is not SHA-256", info.Digest)
	}
	d, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return fmt.Errorf("digest %q: %v", info.Digest, err)
	}
	if info.Size != uint64(size) || !bytes.Equal(d, sum) {
		return fmt.Errorf("the object holds %d bytes of digest %s, the file %d bytes of %s", info.Size, info.Digest,
			size, Digest(sum))
	}
	return nil
}

// Digest is sum (a SHA-256) as the Object Store writes digests: "SHA-256=" and
// its base64url, padded.
func Digest(sum []byte) string {
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum)
}

func (b *Bucket) unbind() {
	b.mu.Lock()
	b.store = nil
	b.mu.Unlock()
}

// bind looks the bucket up, creating it when absent, and checks that it is
// durable enough; once that succeeded it is not asked again.
func (b *Bucket) bind(ctx context.Context) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.store != nil {
		return b.store, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.ConnectTimeout)
	defer cancel()
	store, err := b.js.ObjectStore(ctx, b.bopts.Name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		store, err = b.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: b.bopts.Name,
			Description: "finished files of hawk's uploads", Storage: jetstream.FileStorage,
			Replicas: b.bopts.Replicas, MaxBytes: b.bopts.MaxBytes, TTL: b.bopts.TTL})
		if errors.Is(err, jetstream.ErrBucketExists) { // another hawk made it meanwhile
			store, err = b.js.ObjectStore(ctx, b.bopts.Name)
		} else if err == nil {
			b.log.Info("object store bucket created", zap.String("bucket", b.bopts.Name), zap.Int("replicas", b.bopts.Replicas),
				zap.Int64("max_bytes", b.bopts.MaxBytes), zap.Duration("ttl", b.bopts.TTL))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: bucket %s: %w", b.bopts.Name, err)
	}
	st, err := store.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("jetstream: bucket %s: %w", b.bopts.Name, err)
	}
	if warnings := durability(st.Storage(), st.Replicas(), b.opts.SyncAlways, "the bucket", "files hawk has removed locally"); len(warnings) > 0 {
		if b.opts.RequireDurable {
			return nil, fmt.Errorf("%w (jetstream.require_durable): bucket %s: %s", ErrNotDurable, b.bopts.Name, strings.Join(warnings, "; "))
		}
		for _, w := range warnings {
			b.log.Warn("object store bucket is not durable enough: files can be lost", zap.String("bucket", b.bopts.Name), zap.String("problem", w))
		}
	}
	b.log.Info("object store bucket checked: putting finished files", zap.String("bucket", b.bopts.Name), zap.Int("replicas", st.Replicas()),
		zap.Uint64("bytes", st.Size()))
	b.store = store
	return store, nil
}

// Connected reports whether the NATS connection is up.
func (b *Bucket) Connected() bool { return b.nc.IsConnected() }
