package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/upload"
)

// instantDest commits every batch at once.
type instantDest struct{}

func (instantDest) Submit(b *ingest.Batch, w ingest.Waiter) { w.Committed(b.Seqs(), nil) }

// uploadServer runs a real connection Manager with an upload store; stop closes
// its listener and connections (a restart keeps the store's directory).
func uploadServer(t *testing.T, dir, addr string) (string, *[]upload.FileRecord, func()) {
	t.Helper()
	var mu sync.Mutex
	recs := &[]upload.FileRecord{}
	store, err := upload.Open(upload.Options{Dir: dir, Announce: func(r upload.FileRecord) error {
		mu.Lock()
		defer mu.Unlock()
		*recs = append(*recs, r)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := conn.New(conn.Options{Settings: &conn.Settings{ServerID: "t", Version: "v", HandshakeTimeout: 2 * time.Second,
		HeartbeatInterval: time.Second, HeartbeatTimeout: 3 * time.Second, WriteTimeout: 2 * time.Second, FrameTimeout: 30 * time.Second,
		MaxConns: 10, MaxFrameSize: 1 << 20, MaxInFlight: 1024, DrainTimeout: time.Second, DrainSpread: 10 * time.Millisecond},
		Destination: instantDest{}, Uploads: store, UploadInFlight: 256 << 10})
	done := make(chan struct{})
	go func() { defer close(done); m.Serve(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ln.Close()
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m.Drain(ctx, "test")
			m.Close()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), recs, stop
}

// A file uploaded while reports flow on the same connection, cut by a server
// restart halfway: it resumes from the durable offset and the stored file is
// the file sent, announced once.
func TestUploadResumesAcrossServerRestart(t *testing.T) {
	dir := t.TempDir()
	addr, _, stop := uploadServer(t, dir, "127.0.0.1:0")
	c, err := Dial(context.Background(), Options{Addr: addr, ClientID: "agent-up"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := make([]byte, 3<<20)
	rand.Read(file)
	var restarted sync.Once
	var recs *[]upload.FileRecord
	var maxSeen int64
	progress := func(durable, size int64) {
		maxSeen = max(maxSeen, durable)
		if durable > size/2 {
			restarted.Do(func() {
				stop()
				_, recs, _ = uploadServer(t, dir, addr)
			})
		}
	}
	reports := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.Report(ctx, []byte(`{"n":1}`))
			cancel()
			if err != nil {
				reports <- err
				return
			}
		}
		reports <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Upload(ctx, Upload{ID: "dump-1", Name: "core.dump", File: bytes.NewReader(file), Size: int64(len(file)), Progress: progress, ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-reports; err != nil {
		t.Fatalf("reports beside the upload: %v", err)
	}
	if recs == nil || len(*recs) != 1 {
		t.Fatalf("records after the restart: %v", recs)
	}
	got, err := os.ReadFile((*recs)[0].Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("stored file differs (%d bytes, %v)", len(got), err)
	}
	if maxSeen != int64(len(file)) {
		t.Fatalf("progress reached %d of %d", maxSeen, len(file))
	}
}
