package jetstream_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	nj "github.com/nats-io/nats.go/jetstream"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

func bucket(t *testing.T, url string, syncAlways bool) *jetstream.Bucket {
	t.Helper()
	b, err := jetstream.NewBucket(jetstream.Options{URLs: url, RequireDurable: true, SyncAlways: syncAlways},
		jetstream.BucketOptions{Name: "FILES", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// A Bucket is made while NATS is down and puts once it is up, creating the
// bucket; the object's digest is the file's SHA-256; a second put of the same
// bytes finds it there; other bytes under the name are refused, never replaced.
func TestBucketPut(t *testing.T) {
	ns := natstest.Start(t)
	ns.Stop()
	b := bucket(t, ns.URL(), true)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes: 5 chunks
	sum := sha256.Sum256(data)
	put := func(r io.Reader) (bool, error) {
		return b.Put(ctx, "c/u1", map[string]string{"name": "a.log"}, int64(len(data)), sum[:], r)
	}
	if _, err := put(bytes.NewReader(data)); !errors.Is(err, jetstream.ErrNotConnected) {
		t.Fatalf("Put with NATS down: %v", err)
	}
	ns.Restart()
	testutil.Eventually(t, 10*time.Second, b.Connected, "the bucket to connect")
	if existed, err := put(bytes.NewReader(data)); err != nil || existed {
		t.Fatalf("Put: %v, existed %v", err, existed)
	}
	_, js := ns.Connect()
	store, err := js.ObjectStore(ctx, "FILES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.GetInfo(ctx, "c/u1")
	if err != nil || info.Digest != jetstream.Digest(sum[:]) || info.Size != uint64(len(data)) || info.Metadata["name"] != "a.log" {
		t.Fatalf("object %+v, %v; want digest %s", info, err, jetstream.Digest(sum[:]))
	}
	if !strings.HasPrefix(info.Digest, "SHA-256=") {
		t.Fatalf("digest %q", info.Digest)
	}
	if got, err := store.GetBytes(ctx, "c/u1"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBytes: %d bytes, %v", len(got), err)
	}
	if existed, err := put(bytes.NewReader(data)); err != nil || !existed {
		t.Fatalf("second Put: %v, existed %v; want found there", err, existed)
	}
	other := bytes.ToUpper(data)
	osum := sha256.Sum256(other)
	if _, err := b.Put(ctx, "c/u1", nil, int64(len(other)), osum[:], bytes.NewReader(other)); !errors.Is(err, jetstream.ErrObjectConflict) {
		t.Fatalf("Put of other bytes under the name: %v, want a conflict", err)
	}
	if got, _ := store.GetBytes(ctx, "c/u1"); !bytes.Equal(got, data) {
		t.Fatal("the object was replaced")
	}
	// The bucket deleted by an operator: made again at the next put.
	if err := js.DeleteObjectStore(ctx, "FILES"); err != nil {
		t.Fatal(err)
	}
	if _, err := put(bytes.NewReader(data)); err == nil {
		t.Fatal("Put into a deleted bucket succeeded")
	}
	if existed, err := put(bytes.NewReader(data)); err != nil || existed {
		t.Fatalf("Put after the bucket was deleted: %v, existed %v; want it made again", err, existed)
	}
}

// A reader that fails (the local file is not what its sha256 says) leaves no
// object behind.
func TestBucketPutFailedReadLeavesNothing(t *testing.T) {
	ns := natstest.Start(t)
	b := bucket(t, ns.URL(), true)
	testutil.Eventually(t, 10*time.Second, b.Connected, "the bucket to connect")
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 300000)
	sum := sha256.Sum256(data)
	r := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errors.New("digest mismatch")))
	if _, err := b.Put(ctx, "c/bad", nil, int64(len(data)), sum[:], r); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("Put: %v", err)
	}
	_, js := ns.Connect()
	store, err := js.ObjectStore(ctx, "FILES")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetInfo(ctx, "c/bad"); !errors.Is(err, nj.ErrObjectNotFound) {
		t.Fatalf("GetInfo after a failed put: %v, want not found", err)
	}
}

// With require_durable, a one-replica bucket on servers hawk was not told sync
// always is refused: hawk removes the local copy once a file is in the bucket.
func TestBucketRefusesNotDurable(t *testing.T) {
	ns := natstest.Start(t)
	b := bucket(t, ns.URL(), false)
	testutil.Eventually(t, 10*time.Second, b.Connected, "the bucket to connect")
	sum := sha256.Sum256(nil)
	if _, err := b.Put(context.Background(), "c/u", nil, 0, sum[:], bytes.NewReader(nil)); !errors.Is(err, jetstream.ErrNotDurable) {
		t.Fatalf("Put into a one-replica bucket: %v, want ErrNotDurable", err)
	}
}

// BenchmarkBucketPut puts a 64 MiB file into a bucket of the in-process
// nats-server (sync_interval: always, as a single server must run for hawk).
func BenchmarkBucketPut(b *testing.B) {
	ns := natstest.Start(b)
	bk, err := jetstream.NewBucket(jetstream.Options{URLs: ns.URL(), RequireDurable: true, SyncAlways: true},
		jetstream.BucketOptions{Name: "FILES", Replicas: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bk.Close)
	testutil.Eventually(b, 10*time.Second, bk.Connected, "the bucket to connect")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20)
	sum := sha256.Sum256(data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := range b.N {
		name := "bench/" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")
		if _, err := bk.Put(context.Background(), name, nil, int64(len(data)), sum[:], bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
