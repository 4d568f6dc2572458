package conn

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// fullDest takes its first Submit and leaves its commit to the test; every later
// Submit blocks until release is closed, as a destination without room does, after
// telling its Waiter (SubmitWaits), and then commits at once.
type fullDest struct {
	first   chan func() // commits the first Submit
	took    atomic.Bool
	blocked chan struct{}
	release chan struct{}
}

func (f *fullDest) Submit(b *ingest.Batch, w ingest.Waiter) {
	seqs := append([]uint64(nil), b.Seqs()...)
	if !f.took.Swap(true) {
		f.first <- func() { w.Committed(seqs, nil) }
		return
	}
	ingest.SubmitWaits(w)
	f.blocked <- struct{}{}
	<-f.release
	w.Committed(seqs, nil)
}

// While a reader's Submit waits for room in the destination, the ACKs of the
// connection's earlier reports, committed meanwhile, are written (not held until the
// Submit returns), and the reaper does not take the client for silent: the server is
// the one not reading.
func TestSubmitWaitingLetsEarlierAcksOut(t *testing.T) {
	d := &fullDest{first: make(chan func(), 1), blocked: make(chan struct{}), release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(d.release) }) }
	ts := startServer(t, testSettings(), func(o *Options) { o.Destination = d })
	t.Cleanup(release) // runs before the server's: a failed test's reader is not left blocked
	p := testutil.Dial(t, ts.addr)
	p.Hello("waiting", "")
	p.Send(protocol.TypeReport, 1, []byte("one"))
	var commitFirst func()
	select {
	case commitFirst = <-d.first:
	case <-time.After(10 * time.Second):
		t.Fatal("report 1 never submitted")
	}
	p.Send(protocol.TypeReport, 2, []byte("two"))
	select {
	case <-d.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("report 2 never submitted")
	}
	c := serverConn(t, ts, "waiting")
	if !c.paused.Load() {
		t.Error("reader not paused while its Submit waits: the reaper would time the client out")
	}
	commitFirst()
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ACK seq %d, want 1", f.Seq)
	}
	release()
	if f := p.Expect(protocol.TypeAck); f.Seq != 2 {
		t.Fatalf("ACK seq %d, want 2", f.Seq)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return !c.paused.Load() }, "reader unpaused after its Submit")
}
