package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload"
)

// fakeQueue holds records in memory.
type fakeQueue struct {
	mu   sync.Mutex
	recs []upload.FileRecord
}

func (q *fakeQueue) Backlog(bool) []upload.FileRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]upload.FileRecord(nil), q.recs...)
}

func (q *fakeQueue) Placed(rec upload.FileRecord, _, _ string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recs = nil
	return nil
}

// fakeBucket runs put for each Put and keeps when it was called.
type fakeBucket struct {
	mu    sync.Mutex
	calls []time.Time
	put   func(r io.Reader) error
}

func (b *fakeBucket) Name() string { return "FILES" }

func (b *fakeBucket) Put(_ context.Context, _ string, _ map[string]string, _ int64, _ []byte, r io.Reader) (bool, error) {
	b.mu.Lock()
	b.calls = append(b.calls, time.Now())
	b.mu.Unlock()
	return false, b.put(r)
}

func (b *fakeBucket) times() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.calls...)
}

func queued(t *testing.T, dir string, size int) *fakeQueue {
	t.Helper()
	data := make([]byte, size)
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return &fakeQueue{recs: []upload.FileRecord{{ClientID: "c", UploadID: "u", Path: path, Size: int64(size),
		SHA256: hex.EncodeToString(sum[:]), Published: time.Now()}}}
}

func start(t *testing.T, o Options) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	var once sync.Once
	stop = func() (took time.Duration) {
		once.Do(func() {
			began := time.Now()
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			took = time.Since(began)
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// While the bucket fails, a file is tried again no sooner than its backoff,
// which grows: NATS down is not a busy loop.
func TestFailedPutsBackOff(t *testing.T) {
	dir := t.TempDir()
	b := &fakeBucket{put: func(io.Reader) error { return jetstream.ErrNotConnected }}
	const minWait, maxWait = 20 * time.Millisecond, 80 * time.Millisecond
	start(t, Options{Dir: dir, Bucket: b, Queue: queued(t, dir, 10), MinBackoff: minWait, MaxBackoff: maxWait})
	testutil.Eventually(t, 10*time.Second, func() bool { return len(b.times()) >= 6 }, "six attempts")
	calls := b.times()
	for i := 1; i < len(calls); i++ {
		want := min(minWait<<(i-1), maxWait)
		if gap := calls[i].Sub(calls[i-1]); gap < want-2*time.Millisecond {
			t.Fatalf("attempt %d came %v after the one before, want at least %v", i+1, gap, want)
		}
	}
}

// A stop in the middle of a put ends it at the next read, so the library can
// purge what it sent; Run returns promptly.
func TestStopEndsAPutInProgress(t *testing.T) {
	dir := t.TempDir()
	reading := make(chan struct{})
	var readErr error
	b := &fakeBucket{put: func(r io.Reader) error {
		buf := make([]byte, 1)
		close(reading)
		for {
			if _, err := r.Read(buf); err != nil {
				readErr = err
				return err
			}
			time.Sleep(time.Millisecond) // a slow broker
		}
	}}
	stop := start(t, Options{Dir: dir, Bucket: b, Queue: queued(t, dir, 1<<20)})
	<-reading
	if took := stop(); took > 2*time.Second {
		t.Fatalf("stop took %v", took)
	}
	if !errors.Is(readErr, errStopped) {
		t.Fatalf("the put's read ended with %v, want errStopped", readErr)
	}
}
