package admin

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/metrics"
)

// Requests racing Close are answered, never dropped: Close stops accepting first
// and answers what it accepted (http.Server.Shutdown would close a connection whose
// request it read after shutting down began, and the client would see EOF). As in an
// upgrade, a second server shares the socket and answers once the first has closed.
func TestAdminCloseAnswersAcceptedRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The successor's copy of the socket, as tableflip hands it over.
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Gatherer: metrics.New("test", func() int { return 0 }).Registry}
	ready := NewReadiness("test")
	old := Serve(ln, src, ready, zap.NewNop())
	successor := Serve(ln2, src, ready, zap.NewNop())
	defer successor.Close()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + ln.Addr().String() + "/healthz"
	var failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	old.Close()
	old.Close() // a second call is harmless
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed across close, first: %v", n, firstErr.Load())
	}
}
