package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/upload/uploadtest"
)

// A file uploaded while reports flow on the same connection, cut by a server
// restart halfway: it resumes from the durable offset and the stored file is
// the file sent, announced once.
func TestUploadResumesAcrossServerRestart(t *testing.T) {
	dir := t.TempDir()
	first := uploadtest.Start(t, dir, "127.0.0.1:0", 256<<10)
	c, err := Dial(context.Background(), Options{Addr: first.Addr, ClientID: "agent-up"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := make([]byte, 3<<20)
	rand.Read(file)
	var restarted sync.Once
	var second *uploadtest.Server
	var maxSeen int64
	progress := func(durable, size int64) {
		maxSeen = max(maxSeen, durable)
		if durable > size/2 {
			restarted.Do(func() {
				first.Stop()
				second = uploadtest.Start(t, dir, first.Addr, 256<<10)
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
	if second == nil || len(second.Records()) != 1 || len(first.Records()) != 0 {
		t.Fatalf("records: before the restart %v, after %v", first.Records(), second)
	}
	got, err := os.ReadFile(second.Records()[0].Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("stored file differs (%d bytes, %v)", len(got), err)
	}
	if maxSeen != int64(len(file)) {
		t.Fatalf("progress reached %d of %d", maxSeen, len(file))
	}
}

// On a connection that stays up, every byte of a file goes out once although
// reports share the connection's output with the chunks, whose data is written
// from the upload's buffers (session.queueChunk): a chunk written wrong would be
// refused (bad_crc) and sent again on a new connection.
func TestUploadSendsEachByteOnce(t *testing.T) {
	srv := uploadtest.Start(t, t.TempDir(), "127.0.0.1:0", 1<<20)
	c, err := Dial(context.Background(), Options{Addr: srv.Addr, ClientID: "agent-once"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := make([]byte, 24<<20+123)
	rand.Read(file)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	reports := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				reports <- nil
				return
			default:
			}
			if _, err := c.Report(ctx, []byte(`{"n":1}`)); err != nil {
				reports <- err
				return
			}
		}
	}()
	var sent int64
	err = c.Upload(ctx, Upload{ID: "once-1", Name: "f", File: bytes.NewReader(file), Size: int64(len(file)),
		ChunkSize: 100 << 10, Sent: func(_, n int64) { sent += n }})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-reports; err != nil {
		t.Fatalf("reports beside the upload: %v", err)
	}
	if sent != int64(len(file)) {
		t.Fatalf("%d bytes sent for a file of %d on a connection that stayed up", sent, len(file))
	}
	got, err := os.ReadFile(srv.Records()[0].Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("stored file differs (%d bytes, %v)", len(got), err)
	}
}

func TestUploadWithoutFileIsRefused(t *testing.T) {
	srv := uploadtest.Start(t, t.TempDir(), "127.0.0.1:0", 1<<20)
	c, err := Dial(context.Background(), Options{Addr: srv.Addr, ClientID: "agent-nofile"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Upload(context.Background(), Upload{ID: "nofile", Name: "f", Size: 10}); err == nil {
		t.Fatal("an upload of 10 bytes without a File was accepted")
	}
}

// countingReader counts the bytes read from a file.
type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// A caller that knows the file's sha256 passes it: the client reads the file
// once, for the chunks, and the server still checks the bytes against it.
func TestUploadKnownSHA256(t *testing.T) {
	srv := uploadtest.Start(t, t.TempDir(), "127.0.0.1:0", 1<<20)
	c, err := Dial(context.Background(), Options{Addr: srv.Addr, ClientID: "agent-sum"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := make([]byte, 3<<20+5)
	rand.Read(file)
	h := sha256.Sum256(file)
	sum := hex.EncodeToString(h[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r := &countingReader{r: bytes.NewReader(file)}
	if err := c.Upload(ctx, Upload{ID: "sum-1", Name: "f", File: r, Size: int64(len(file)), SHA256: sum}); err != nil {
		t.Fatal(err)
	}
	if got := r.n.Load(); got != int64(len(file)) {
		t.Fatalf("%d bytes read for a file of %d whose sha256 was given: the client hashed it", got, len(file))
	}
	recs := srv.Records()
	if len(recs) != 1 || recs[0].SHA256 != sum {
		t.Fatalf("records %+v, want one with sha256 %s", recs, sum)
	}

	wrong := strings.Repeat("0", 64)
	err = c.Upload(ctx, Upload{ID: "sum-2", Name: "f", File: bytes.NewReader(file), Size: int64(len(file)), SHA256: wrong})
	var ue *UploadError
	if !errors.As(err, &ue) || ue.State.Code != protocol.CodeUploadMismatch {
		t.Fatalf("a wrong sha256 given: %v, want upload_mismatch", err)
	}
	if n := len(srv.Records()); n != 1 {
		t.Fatalf("%d records after a wrong sha256, want the first upload's alone", n)
	}
	if err := c.Upload(ctx, Upload{ID: "sum-3", Name: "f", File: bytes.NewReader(file), Size: int64(len(file)), SHA256: strings.ToUpper(sum)}); err == nil || !strings.Contains(err.Error(), "lower-case hex") {
		t.Fatalf("a malformed sha256: %v", err)
	}
}
