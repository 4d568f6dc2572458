package conn

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// connOf returns the server's connection of the client clientID, once active.
func connOf(t *testing.T, ts *testServer, clientID string) *Conn {
	t.Helper()
	var found *Conn
	testutil.Eventually(t, 5*time.Second, func() bool {
		for _, c := range ts.m.reg.Snapshot(nil) {
			if c.state.Load() == stateActive && c.clientID == clientID {
				found = c
				return true
			}
		}
		return false
	}, "the connection of %s", clientID)
	return found
}

// commitViaWriter sends REPORT seq on p and has its commit answered only once p's
// reader is back waiting on its socket, so that the ACK goes to the ACK writers
// rather than to the reader's own flush.
func commitViaWriter(t *testing.T, ts *testServer, p *testutil.Peer, c *Conn, seq uint64) {
	t.Helper()
	hold := make(chan struct{})
	ts.sp.mu.Lock()
	ts.sp.hold = hold
	ts.sp.mu.Unlock()
	lines := ts.spoolLines()
	sendReports(p, seq)
	testutil.Eventually(t, 5*time.Second, func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return ts.spoolLines() == lines+1 && !c.held
	}, "REPORT %d submitted and its reader waiting again", seq)
	ts.sp.mu.Lock()
	ts.sp.hold = nil
	ts.sp.mu.Unlock()
	close(hold)
}

// A client that reads nothing must not take the only ACK writer: the writer leaves
// the full socket to a flusher of its own and goes on to the other connections.
func TestAckWriterDoesNotWaitForNonReadingClient(t *testing.T) {
	s := testSettings()
	// Long enough that the reaper cannot free a writer stuck on the full socket
	// before the other client's ACK is due.
	s.WriteTimeout, s.HeartbeatInterval, s.HeartbeatTimeout = time.Minute, 30*time.Second, time.Minute
	ts := startServer(t, s, func(o *Options) { o.ackWriters = 1 })

	stuck := testutil.DialReadBuffer(t, ts.addr, 4096)
	stuck.Hello("stuck", "")
	sc := connOf(t, ts, "stuck")
	// Fill the server's side of the non-reading client's socket, so that no byte
	// of its ACK can be written: until a write takes nothing at all (the kernel
	// frees what the client's window took meanwhile, so one timed-out write is
	// not enough).
	junk := make([]byte, 16<<20)
	testutil.Eventually(t, 10*time.Second, func() bool {
		sc.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := sc.nc.Write(junk)
		if err == nil {
			t.Fatalf("wrote all %d bytes to a client that reads nothing", n)
		}
		return n == 0
	}, "the non-reading client's socket full")
	sc.nc.SetWriteDeadline(time.Time{})

	commitViaWriter(t, ts, stuck, sc, 1)
	testutil.Eventually(t, 5*time.Second, func() bool { return sc.writeAt.Load() != 0 },
		"the stuck client's ACK waiting in a write")
	if !goroutineIn(".flushFrom(") {
		t.Fatal("no flusher took the write the socket did not take")
	}

	reader := testutil.Dial(t, ts.addr)
	reader.Hello("reader", "")
	rc := connOf(t, ts, "reader")
	for seq := uint64(1); seq <= 3; seq++ {
		commitViaWriter(t, ts, reader, rc, seq)
		f := reader.Expect(protocol.TypeAck)
		if f.Seq != seq {
			t.Fatalf("ACK seq %d, want %d", f.Seq, seq)
		}
	}
	sc.wmu.Lock()
	flushing := sc.flushing
	sc.wmu.Unlock()
	if !flushing {
		t.Fatal("the stuck client's ACK was dropped: nothing is flushing it")
	}
}

// stop lets the writers write what was handed to them, and leaves no goroutine.
func TestAckWritersStopCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	w := &ackWriters{wake: make(chan struct{}, 2)}
	conns := []*Conn{{flushing: true}, {flushing: true}, {flushing: true}}
	for _, c := range conns {
		if !w.hand(c) {
			t.Fatal("hand refused before stop")
		}
	}
	w.wg.Add(2)
	go w.run()
	go w.run()
	w.stop()
	for i, c := range conns {
		c.wmu.Lock()
		flushing := c.flushing
		c.wmu.Unlock()
		if flushing {
			t.Errorf("connection %d handed before stop was never taken", i)
		}
	}
	if w.hand(&Conn{flushing: true}) {
		t.Error("hand accepted a connection after stop")
	}

	// Writers parked with nothing queued exit as well.
	w = startAckWriters(3)
	testutil.Eventually(t, 5*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.idle == 3
	}, "3 writers parked")
	w.stop()
}
