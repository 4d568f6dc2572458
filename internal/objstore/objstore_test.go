package objstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	nj "github.com/nats-io/nats.go/jetstream"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/objstore"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
	"github.com/hawk-agents/hawk/internal/upload"
)

// counts is an Observer that keeps what it was told.
type counts struct {
	mu       sync.Mutex
	placed   int
	existed  int
	failed   map[string]int
	backlog  int
	inflight int64
}

func (c *counts) Placed(_ int64, existed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.placed++
	if existed {
		c.existed++
	}
}

func (c *counts) Failed(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[reason]++
}

func (c *counts) Backlog(files int, bytes int64, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backlog, c.inflight = files, bytes
}

func (c *counts) get(f func(*counts) bool) func() bool {
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return f(c)
	}
}

// env is a nats-server with the report stream, the upload store in queue mode
// announcing into the stream, and the bucket.
type env struct {
	t      *testing.T
	ns     *natstest.Server
	dir    string
	dest   *jetstream.Destination
	bucket *jetstream.Bucket
	store  *upload.Store
	kick   chan struct{}
	obs    *counts
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ns: natstest.Start(t), dir: t.TempDir()}
	e.ns.CreateStream("REPORTS", "hawk.reports.*")
	var err error
	e.dest, err = jetstream.Open(jetstream.Options{URLs: e.ns.URL(), Stream: "REPORTS", Subject: "hawk.reports.<client_id>",
		RequireDurable: true, SyncAlways: true, PublishTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.dest.Close() })
	e.bucket, err = jetstream.NewBucket(jetstream.Options{URLs: e.ns.URL(), RequireDurable: true, SyncAlways: true},
		jetstream.BucketOptions{Name: "FILES", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.bucket.Close)
	e.open()
	return e
}

// open opens the store (again: a restart).
func (e *env) open() {
	e.t.Helper()
	e.kick = make(chan struct{}, 1)
	kick := e.kick
	var err error
	e.store, err = upload.Open(upload.Options{Dir: e.dir, Announce: (&upload.Announcer{Dest: e.dest}).Announce,
		Queue: true, Queued: func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// run runs the actor until the returned stop is called (and at the end of the test).
func (e *env) run() (stop func()) {
	e.obs = &counts{failed: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- objstore.Run(ctx, objstore.Options{Dir: e.dir, Bucket: e.bucket, Queue: e.store, Kick: e.kick, Observer: e.obs,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Error(err)
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// commit uploads file as upload id of client "agent-1" and commits it.
func (e *env) commit(id string, file []byte) upload.FileRecord {
	e.t.Helper()
	h := sha256.Sum256(file)
	sum := hex.EncodeToString(h[:])
	u, st := e.store.Begin("agent-1", protocol.UploadOpen{UploadID: id, Name: id + ".bin", Size: int64(len(file)), SHA256: sum})
	if st.Code != "" {
		e.t.Fatal(st)
	}
	defer u.Close()
	if st := u.Write(0, file); st.Code != "" {
		e.t.Fatal(st)
	}
	if st := u.Commit(protocol.UploadCommit{UploadID: id, Size: int64(len(file)), SHA256: sum}); !st.Done || st.Code != "" {
		e.t.Fatal(st)
	}
	for _, r := range e.store.Backlog(false) {
		if r.UploadID == id {
			return r
		}
	}
	e.t.Fatalf("upload %s is not in the backlog after its commit", id)
	return upload.FileRecord{}
}

// object returns the bucket's object of rec and its bytes.
func (e *env) object(rec upload.FileRecord) (*nj.ObjectInfo, []byte, error) {
	_, js := e.ns.Connect()
	ctx := context.Background()
	store, err := js.ObjectStore(ctx, "FILES")
	if err != nil {
		return nil, nil, err
	}
	info, err := store.GetInfo(ctx, objstore.Name(rec))
	if err != nil {
		return nil, nil, err
	}
	b, err := store.GetBytes(ctx, objstore.Name(rec))
	return info, b, err
}

// records is how many times the stream holds the record of rec.
func (e *env) records(rec upload.FileRecord) int {
	byID, _ := e.ns.Messages("REPORTS")
	return byID[jetstream.MsgID("upload:"+rec.ClientID, rec.Seq)]
}

func (e *env) placed(rec upload.FileRecord) {
	e.t.Helper()
	testutil.Eventually(e.t, 20*time.Second, func() bool { return len(e.store.Backlog(false)) == 0 }, "the backlog to empty")
	info, got, err := e.object(rec)
	if err != nil {
		e.t.Fatal(err)
	}
	want, _ := hex.DecodeString(rec.SHA256)
	if info.Digest != jetstream.Digest(want) || info.Size != uint64(rec.Size) || info.Metadata["client_id"] != rec.ClientID {
		e.t.Fatalf("object %+v; want digest %s of the upload's sha256", info, jetstream.Digest(want))
	}
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != rec.SHA256 {
		e.t.Fatal("the object's bytes are not the upload's")
	}
	if n := e.records(rec); n != 1 {
		e.t.Fatalf("the stream holds %d records of the file, want 1", n)
	}
	if _, err := os.Stat(rec.Path); !errors.Is(err, os.ErrNotExist) {
		e.t.Fatalf("the local copy is still there: %v", err)
	}
}

func file(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// A committed file goes into the bucket (several chunks), its digest the
// upload's sha256, announced once with where it is, the local copy removed.
func TestFilePlacedOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	rec := e.commit("u1", file(700_000, 'a'))
	e.placed(rec)
	testutil.Eventually(t, 5*time.Second, e.obs.get(func(c *counts) bool { return c.placed == 1 && c.backlog == 0 }), "the observer to see it")
	if _, total := e.store.Usage(); total != 0 {
		t.Fatalf("uploads still count %d bytes", total)
	}
}

// NATS down: the file waits in the uploads directory (the backlog says so, the
// failures are counted), and goes in once NATS is back.
func TestNATSDownThenUp(t *testing.T) {
	e := newEnv(t)
	e.ns.Stop()
	e.run()
	rec := e.commit("u1", file(200_000, 'b'))
	testutil.Eventually(t, 10*time.Second, e.obs.get(func(c *counts) bool { return c.failed[objstore.ReasonUnavailable] >= 2 && c.backlog == 1 }),
		"failures while NATS is down")
	if _, err := os.Stat(rec.Path); err != nil {
		t.Fatalf("the local file while NATS is down: %v", err)
	}
	e.ns.Restart()
	e.placed(rec)
}

// A restart in the middle: the file was put by a process that died before it
// announced it, and another one before its .json said so (its record is in the
// stream). After the restart each is found in the bucket, not put again, and
// the stream holds one record of each.
func TestRestartInTheMiddle(t *testing.T) {
	e := newEnv(t)
	put := e.commit("put", file(300_000, 'c'))
	announced := e.commit("announced", file(1000, 'd'))
	testutil.Eventually(t, 10*time.Second, e.bucket.Connected, "the bucket to connect")
	for _, r := range []upload.FileRecord{put, announced} {
		sum, _ := hex.DecodeString(r.SHA256)
		f, err := os.Open(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.bucket.Put(context.Background(), objstore.Name(r), map[string]string{"client_id": r.ClientID}, r.Size, sum, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	a := announced
	a.Bucket, a.Object = "FILES", objstore.Name(a)
	if err := (&upload.Announcer{Dest: e.dest}).Announce(a); err != nil {
		t.Fatal(err)
	}
	e.open() // the restart
	e.run()
	e.placed(put)
	e.placed(announced)
	if !e.obs.get(func(c *counts) bool { return c.existed == 2 })() {
		t.Fatalf("%+v: want both files found in the bucket (none put again)", e.obs)
	}
}

// A local file that is not what its sha256 says never becomes an object, nor a
// record: it stays, counted as a digest failure.
func TestDigestChecked(t *testing.T) {
	e := newEnv(t)
	rec := e.commit("u1", file(300_000, 'e'))
	if err := os.WriteFile(rec.Path, file(300_000, 'E'), 0o640); err != nil {
		t.Fatal(err)
	}
	e.run()
	testutil.Eventually(t, 10*time.Second, e.obs.get(func(c *counts) bool { return c.failed[objstore.ReasonDigest] >= 2 }), "digest failures")
	if _, _, err := e.object(rec); !errors.Is(err, nj.ErrObjectNotFound) {
		t.Fatalf("object of a corrupt file: %v, want none", err)
	}
	if n := e.records(rec); n != 0 || len(e.store.Backlog(false)) != 1 {
		t.Fatalf("%d records, backlog %d", n, len(e.store.Backlog(false)))
	}
}
