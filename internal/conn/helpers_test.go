package conn

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDest records the record lines submitted and commits them on its own
// goroutine, like the spool's committer; fail makes every commit fail.
type fakeDest struct {
	mu    sync.Mutex
	lines []byte
	fail  error
	hold  chan struct{} // when non-nil, commits wait for it to close
	wg    sync.WaitGroup
}

func (f *fakeDest) Submit(b *ingest.Batch, w ingest.Waiter) {
	seqs := b.Seqs()
	f.mu.Lock()
	f.lines = append(f.lines, b.Lines()...)
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
	for _, c := range m.reg.Snapshot(nil) {
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
		FrameTimeout:      30 * time.Second,
		MaxConns:          100,
		MaxFrameSize:      1 << 20,
		MaxInFlight:       1024,
		DrainTimeout:      3 * time.Second,
		DrainSpread:       100 * time.Millisecond,
	}
}

type testServer struct {
	m    *Manager
	sp   *fakeDest
	obs  *closeRecorder
	logs *observer.ObservedLogs // every line the Manager logged, at debug and above
	addr string
	ln   net.Listener
	done chan struct{}
}

// startServer runs a Manager with a reaper on 127.0.0.1:0; everything stops at the
// end of the test, connections included.
// opts set more Options (Uploads, ProxyFrom, a Destination, ...); the test's own
// Settings, logger and observer replace those fields, and its fakeDest is the
// destination unless an option set one.
func startServer(t *testing.T, s *Settings, opts ...func(*Options)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := &fakeDest{}
	ts := &testServer{sp: sp, obs: &closeRecorder{}, addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	core, logs := observer.New(zap.DebugLevel)
	ts.logs = logs
	logger := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	var o Options
	for _, f := range opts {
		f(&o)
	}
	if o.Destination == nil { // an option may set its own
		o.Destination = sp
	}
	o.Settings, o.Logger, o.Observer = s, logger, ts.obs
	ts.m = New(o)
	go func() { defer close(ts.done); ts.m.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-ts.done
		closeAll(ts.m, "test over")
		for _, c := range ts.m.reg.Snapshot(nil) {
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

// closeRecorder is an Observer that remembers why each connection closed.
type closeRecorder struct {
	NopObserver
	mu      sync.Mutex
	reasons []CloseReason
	refused map[string]int // AuthRefused: "credential/reason"
}

func (o *closeRecorder) Closed(r CloseReason, _ bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reasons = append(o.reasons, r)
}

// closed returns the close reasons seen so far, in order.
func (o *closeRecorder) closed() []CloseReason {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]CloseReason(nil), o.reasons...)
}

// pinger returns a function that sends p a PING with the next seq and fails t
// unless the next frame is its PONG.
func pinger(t *testing.T, p *testutil.Peer) func() {
	seq := uint64(0)
	return func() {
		seq++
		p.Send(protocol.TypePing, seq, nil)
		if f := p.Expect(protocol.TypePong); f.Seq != seq {
			t.Fatalf("PONG seq %d, want %d", f.Seq, seq)
		}
	}
}

// goroutineIn reports whether some goroutine's stack holds the call named by
// fn (".serveIdlePlain(").
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte(fn))
}

// waitsOnFreshGoroutine checks that p's connection, just past HELLO, is not yet
// served by fresh (".serveIdlePlain("), then heartbeats until a fresh goroutine
// running fresh waits for its input, and returns p's pinger.
func waitsOnFreshGoroutine(t *testing.T, p *testutil.Peer, fresh string) func() {
	if goroutineIn(fresh) {
		t.Fatal("the reader was replaced before it read for a second")
	}
	ping := pinger(t, p)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ping()
		return goroutineIn(fresh)
	}, "a fresh goroutine ("+fresh+") waiting for the connection's input")
	return ping
}
