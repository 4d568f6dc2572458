package conn

import (
	"fmt"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// parkedIs waits until exactly n connections of ts are parked and no goroutine
// serves any of them.
func parkedIs(t *testing.T, ts *testServer, n int, what string) {
	t.Helper()
	if ts.m.idle == nil {
		t.Fatal("no idle poller on this system")
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		if ts.m.idle.parked() != n {
			return false
		}
		for _, c := range ts.m.reg.Snapshot(nil) {
			if goroutineIn(fmt.Sprintf(".serveFrom(%p", c)) {
				return false
			}
		}
		return true
	}, "%s: %d parked, want %d, with no reader", what, ts.m.idle.parked(), n)
}

// respawnAfterIs sets respawnAfter for one test: 0 makes every reader the poller
// starts park as soon as the socket is empty (as an idle agent's heartbeat does,
// after a quiet spell of respawnAfter or more); an hour makes none do.
func respawnAfterIs(t *testing.T, d time.Duration) {
	old := respawnAfter
	respawnAfter = int64(d)
	t.Cleanup(func() { respawnAfter = old })
}

// parkedPeer starts a server and one client, and waits until the client's
// connection is parked after its handshake.
func parkedPeer(t *testing.T) (*testServer, *testutil.Peer) {
	t.Helper()
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("agent-1", "")
	parkedIs(t, ts, 1, "after the handshake")
	return ts, p
}

// readerWaits waits until ts's one connection is not parked and its reader waits
// on the socket.
func readerWaits(t *testing.T, ts *testServer, what string) {
	t.Helper()
	c := ts.m.reg.Snapshot(nil)[0]
	testutil.Eventually(t, 10*time.Second, func() bool {
		return ts.m.idle.parked() == 0 && goroutineIn(fmt.Sprintf(".serveFrom(%p", c))
	}, "%s: the reader waits on the socket", what)
}

// TestPlainIdleConnectionParks: a plaintext connection with nothing to read has no
// goroutine (it is parked in the idle poller) from its handshake on, and again
// after each heartbeat or report that follows a quiet spell; each is answered.
func TestPlainIdleConnectionParks(t *testing.T) {
	respawnAfterIs(t, 0)
	ts, p := parkedPeer(t)
	ping := pinger(t, p)
	for i := range 5 {
		ping()
		parkedIs(t, ts, 1, fmt.Sprintf("after heartbeat %d", i))
	}
	p.Send(protocol.TypeReport, 1, []byte(`{"x":1}`))
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ACK seq %d, want 1", f.Seq)
	}
	parkedIs(t, ts, 1, "after a report")
}

// TestBusyConnectionKeepsItsReader: a client that sends again before a quiet
// spell (respawnAfter) keeps its reader on the socket: no park per read.
func TestBusyConnectionKeepsItsReader(t *testing.T) {
	respawnAfterIs(t, time.Hour)
	ts, p := parkedPeer(t)
	for seq := uint64(1); seq <= 5; seq++ {
		p.Send(protocol.TypeReport, seq, []byte(`{"x":1}`))
		expectAnswers(t, p, protocol.TypeAck, seq)
		readerWaits(t, ts, fmt.Sprintf("after report %d", seq))
	}
}

// TestPlainPartialFrameIsNotParked: a reader holding part of a frame waits for the
// rest on the socket (the frame timeout needs it), and the frame completes.
func TestPlainPartialFrameIsNotParked(t *testing.T) {
	respawnAfterIs(t, 0)
	ts, p := parkedPeer(t)
	frame := protocol.AppendFrame(nil, protocol.TypeReport, 1, []byte(`{"x":1}`))
	p.Write(frame[:protocol.HeaderSize+2])
	readerWaits(t, ts, "holding a partial frame")
	p.Write(frame[protocol.HeaderSize+2:])
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ACK seq %d, want 1", f.Seq)
	}
	parkedIs(t, ts, 1, "after the frame")
}

// TestParkedConnectionEnds: a parked connection's reader is started to end it,
// whoever ends it: the client leaving, the server closing it, the server telling
// it ERROR (a goodbye the client does not answer: the linger deadline ends it).
func TestParkedConnectionEnds(t *testing.T) {
	ts := startServer(t, testSettings())
	var peers []*testutil.Peer
	for i := range 3 {
		p := testutil.Dial(t, ts.addr)
		p.Hello(fmt.Sprintf("agent-%d", i), "")
		peers = append(peers, p)
	}
	parkedIs(t, ts, 3, "after the handshakes")
	conns := ts.m.reg.Snapshot(nil)
	byID := map[string]*Conn{}
	for _, c := range conns {
		byID[c.clientID] = c
	}
	peers[0].Conn.Close()
	byID["agent-1"].closeNow(ReasonShutdown)
	byID["agent-2"].fail(ReasonShutdown, protocol.CodeShutdown, "test")
	peers[2].ExpectError(protocol.CodeShutdown)
	for id, c := range byID {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: parked connection not torn down", id)
		}
	}
	parkedIs(t, ts, 0, "after the ends")
	if n := ts.m.Count(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

// TestParkedConnectionsHandOver: connections parked in the old process move when
// a handoff asks them (the ask starts their readers), are parked in the new one,
// and go on there.
func TestParkedConnectionsHandOver(t *testing.T) {
	old := startHandoffServer(t)
	next := startHandoffServer(t)
	const n = 50
	peers := make([]*testutil.Peer, n)
	for i := range peers {
		p := testutil.Dial(t, old.addr)
		p.Hello(fmt.Sprintf("agent-%d", i), "")
		peers[i] = p
	}
	parkedIs(t, old, n, "before the handoff")
	moveAll(t, old, next, n)
	parkedIs(t, next, n, "adopted")
	for i, p := range peers {
		sendReports(p, uint64(i+1))
		expectAnswers(t, p, protocol.TypeAck, uint64(i+1))
	}
}

// TestParkAllocatesNothing: parking a connection again (once per heartbeat of an
// idle agent) allocates nothing.
func TestParkAllocatesNothing(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("agent-1", "")
	parkedIs(t, ts, 1, "after the handshake")
	c := ts.m.reg.Snapshot(nil)[0]
	if a := testing.AllocsPerRun(100, func() {
		if c.m.idle.unpark(c.id) == nil || !c.m.idle.park(c) {
			t.Fatal("not parked again")
		}
	}); a != 0 {
		t.Fatalf("%v allocations per park", a)
	}
}

// TestReaderBornFlagsOnlyWhenAsked: a reader's born is never 0 and holds
// parkWhenQuiet only when asked, whatever the low bits of the time it started.
func TestReaderBornFlagsOnlyWhenAsked(t *testing.T) {
	for _, at := range []int64{0, 1, 2, 3, 1<<40 | 2, 1<<40 | 3} {
		if b := readerBorn(at, false); b == 0 || b&parkWhenQuiet != 0 {
			t.Errorf("readerBorn(%#x, false) = %#x: 0 or flagged", at, b)
		}
		if b := readerBorn(at, true); b&parkWhenQuiet == 0 || b-at > 3 || at-b > 3 {
			t.Errorf("readerBorn(%#x, true) = %#x: not flagged, or not the time", at, b)
		}
	}
}
