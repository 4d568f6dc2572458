// Package uploadtest runs a connection Manager with an upload store on 127.0.0.1, for tests of upload clients.
package uploadtest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/upload"
)

// Server is a running Manager whose reports are committed at once and whose
// published files are recorded.
type Server struct {
	Addr string

	mu   sync.Mutex
	recs []upload.FileRecord
	stop func()
}

// instantDest commits every batch at once.
type instantDest struct{}

func (instantDest) Submit(b *ingest.Batch, w ingest.Waiter) { w.Committed(b.Seqs(), nil) }

// Start serves uploads into dir on addr ("127.0.0.1:0" for a free port); the
// server stops at the end of the test, or at Stop (a restart: Start again with
// the same dir and Addr).
func Start(t testing.TB, dir, addr string, inFlight int) *Server {
	t.Helper()
	s := &Server{}
	store, err := upload.Open(upload.Options{Dir: dir, Announce: func(r upload.FileRecord) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.recs = append(s.recs, r)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	m := conn.New(conn.Options{Settings: &conn.Settings{ServerID: "uploadtest", Version: "v", HandshakeTimeout: 2 * time.Second,
		HeartbeatInterval: time.Second, HeartbeatTimeout: 3 * time.Second, WriteTimeout: 2 * time.Second, FrameTimeout: 30 * time.Second,
		MaxConns: 10, MaxFrameSize: 1 << 20, MaxInFlight: 1024, DrainTimeout: time.Second, DrainSpread: 10 * time.Millisecond},
		Destination: instantDest{}, Uploads: store, UploadInFlight: inFlight})
	done := make(chan struct{})
	go func() { defer close(done); m.Serve(ln) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			ln.Close()
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m.Drain(ctx, "test")
			m.Close()
		})
	}
	t.Cleanup(s.stop)
	return s
}

// Stop closes the listener and every connection.
func (s *Server) Stop() { s.stop() }

// Records returns the files announced so far.
func (s *Server) Records() []upload.FileRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]upload.FileRecord(nil), s.recs...)
}
