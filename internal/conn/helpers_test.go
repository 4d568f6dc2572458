package conn

import (
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/spool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSpool records what was submitted and commits it on its own goroutine, like
// the real spool's committer; fail makes every commit fail.
type fakeSpool struct {
	mu    sync.Mutex
	lines []byte
	fail  error
	hold  chan struct{} // when non-nil, commits wait for it to close
	wg    sync.WaitGroup
}

func (f *fakeSpool) Submit(lines []byte, seqs []uint64, w spool.Waiter) {
	f.mu.Lock()
	f.lines = append(f.lines, lines...)
	err, hold := f.fail, f.hold
	f.mu.Unlock()
	own := append([]uint64(nil), seqs...)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if hold != nil {
			<-hold
		}
		w.Committed(own, err)
	}()
}

// closeAll tells every connection ERROR shutdown; the test's way to end them all.
func closeAll(m *Manager, msg string) {
	for _, c := range m.reg.snapshot(nil) {
		c.fail(ReasonShutdown, protocol.CodeShutdown, msg)
	}
}

func testSettings() *Settings {
	return &Settings{
		ServerID:          "test",
		Version:           "v-test",
		HandshakeTimeout:  2 * time.Second,
		HeartbeatInterval: time.Second,
		HeartbeatTimeout:  3 * time.Second,
		WriteTimeout:      2 * time.Second,
		MaxConns:          100,
		MaxFrameSize:      1 << 20,
		DrainTimeout:      3 * time.Second,
		DrainSpread:       100 * time.Millisecond,
	}
}

type testServer struct {
	m    *Manager
	sp   *fakeSpool
	addr string
	ln   net.Listener
	done chan struct{}
}

// startServer runs a Manager with a reaper on 127.0.0.1:0; everything stops at the
// end of the test, connections included.
func startServer(t *testing.T, s *Settings) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := &fakeSpool{}
	ts := &testServer{sp: sp, addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	ts.m = New(Options{Settings: s, Spool: sp, Logger: zaptest.NewLogger(t)})
	go func() { defer close(ts.done); ts.m.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-ts.done
		closeAll(ts.m, "test over")
		for _, c := range ts.m.reg.snapshot(nil) {
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				c.closeNow(ReasonShutdown)
				<-c.Done()
			}
		}
		ts.m.Close()
		sp.wg.Wait()
	})
	return ts
}
