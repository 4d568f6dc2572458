package conn

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// startDedupServer is startServer with a dedup table.
func startDedupServer(t *testing.T) (*testServer, *dedup.Table) {
	t.Helper()
	table, err := dedup.New(dedup.Options{Window: 1024})
	if err != nil {
		t.Fatal(err)
	}
	table.SetReady()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := &fakeDest{}
	ts := &testServer{sp: sp, obs: &closeRecorder{}, addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	ts.m = New(Options{Settings: testSettings(), Destination: sp, Logger: zaptest.NewLogger(t), Observer: ts.obs, Dedup: table})
	go func() { defer close(ts.done); ts.m.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-ts.done
		closeAll(ts.m, "test over")
		for _, c := range ts.m.reg.Snapshot(nil) {
			<-c.Done()
		}
		ts.m.Close()
		sp.wg.Wait()
	})
	return ts, table
}

func (ts *testServer) spoolLines() int {
	ts.sp.mu.Lock()
	defer ts.sp.mu.Unlock()
	return bytes.Count(ts.sp.lines, []byte("\n"))
}

func sendReports(p *testutil.Peer, seqs ...uint64) {
	var stream []byte
	for _, s := range seqs {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, s, []byte(`{"x":1}`))
	}
	p.Write(stream)
}

// expectAnswers reads one ACK or NACK per seq, in any order.
func expectAnswers(t *testing.T, p *testutil.Peer, want protocol.Type, seqs ...uint64) {
	t.Helper()
	left := map[uint64]bool{}
	for _, s := range seqs {
		left[s] = true
	}
	for len(left) > 0 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %s of %v: %v", want, left, err)
		}
		if f.Type != want || !left[f.Seq] {
			t.Fatalf("got %s seq %d, want %s for one of %v", f.Type, f.Seq, want, left)
		}
		delete(left, f.Seq)
	}
}

// A report resent on a new connection after its ACK was lost is ACKed again and
// not stored a second time.
func TestResendOfDurableReportIsAckedNotStored(t *testing.T) {
	ts, table := startDedupServer(t)
	p := testutil.Dial(t, ts.addr)
	p.Hello("agent-1", "")
	sendReports(p, 1, 2, 3)
	expectAnswers(t, p, protocol.TypeAck, 1, 2, 3)
	p.Conn.Close()

	q := testutil.Dial(t, ts.addr)
	q.Hello("agent-1", "")
	sendReports(q, 1, 2, 3, 4)
	expectAnswers(t, q, protocol.TypeAck, 1, 2, 3, 4)
	if n := ts.spoolLines(); n != 4 {
		t.Fatalf("%d spool lines, want 4 (each report once)", n)
	}
	if d := table.Duplicates(); d != 3 {
		t.Fatalf("%d duplicates counted, want 3", d)
	}
	// Another client's seqs are its own.
	r := testutil.Dial(t, ts.addr)
	r.Hello("agent-2", "")
	sendReports(r, 1)
	expectAnswers(t, r, protocol.TypeAck, 1)
	if n := ts.spoolLines(); n != 5 {
		t.Fatalf("%d spool lines, want 5", n)
	}
}

// The same report on a second connection while the first copy's batch is not yet
// durable: nothing more is stored, and the second copy gets the first's outcome.
func TestDuplicateWhilePending(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail error
		want protocol.Type
	}{
		{"first copy durable", nil, protocol.TypeAck},
		{"first copy failed", errors.New("no space left on device"), protocol.TypeNack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, _ := startDedupServer(t)
			hold := make(chan struct{})
			ts.sp.mu.Lock()
			ts.sp.hold, ts.sp.fail = hold, tc.fail
			ts.sp.mu.Unlock()
			p := testutil.Dial(t, ts.addr)
			p.Hello("agent-1", "")
			sendReports(p, 9)
			testutil.Eventually(t, 5*time.Second, func() bool { return ts.spoolLines() == 1 }, "the first copy submitted")
			// The agent reconnects (the old connection is replaced) and resends.
			q := testutil.Dial(t, ts.addr)
			q.Hello("agent-1", "")
			sendReports(q, 9, 10)
			testutil.Eventually(t, 5*time.Second, func() bool { return ts.spoolLines() == 2 }, "seq 10 submitted")
			close(hold)
			expectAnswers(t, q, tc.want, 9, 10)
			if n := ts.spoolLines(); n != 2 {
				t.Fatalf("%d spool lines, want 2: the second copy of 9 must not be stored", n)
			}
		})
	}
}

// benchDedup is the dedup table benchmarks run with, as the server does.
func benchDedup(b *testing.B) *dedup.Table {
	t, err := dedup.New(dedup.Options{})
	if err != nil {
		b.Fatal(err)
	}
	t.SetReady()
	return t
}
