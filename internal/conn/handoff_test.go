package conn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// receiveInto runs a receiver for m on the child end of a new channel, as a new
// process would; it returns the parent's end and a wait for the receiver.
func receiveInto(t *testing.T, m *Manager) (*handoff.Channel, func() error) {
	t.Helper()
	p, err := handoff.NewPair()
	if err != nil {
		t.Fatal(err)
	}
	child, err := handoff.FromFile(p.Child)
	p.Child.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer child.Close()
		done <- child.Receive(func(f *os.File, st *handoff.State, err error) {
			if err != nil {
				m.Reject(f, err)
				return
			}
			if err := m.Adopt(f, st); err != nil {
				t.Errorf("adopt: %v", err)
			}
		})
	}()
	t.Cleanup(func() { p.Parent.Close() })
	return p.Parent, func() error { return <-done }
}

// waitPartial waits until every reader of ts holds cut bytes of a frame.
func waitPartial(t *testing.T, ts *testServer, cut int) {
	t.Helper()
	waitFor(t, "every reader to hold its partial frame", func() bool {
		for _, c := range ts.m.reg.Snapshot(nil) {
			if c.frameHave.Load()>>32 != uint64(cut) {
				return false
			}
		}
		return true
	})
}

// startHandoffServer is startDedupServer with room for the connections here.
func startHandoffServer(t *testing.T) *testServer {
	ts, _ := startDedupServer(t)
	s := testSettings()
	s.MaxConns = 1000
	ts.m.Apply(s)
	return ts
}

// handOver hands the connections of old to next through a real socketpair.
func handOver(t *testing.T, old, next *testServer) handoff.Result {
	t.Helper()
	ch, received := receiveInto(t, next.m)
	res := handoff.Drive(context.Background(), old.m.HandoffConns(), ch, time.Now().Add(5*time.Second))
	if err := ch.Done(&handoff.Summary{Moved: res.Moved}); err != nil {
		t.Fatal(err)
	}
	if err := received(); err != nil {
		t.Fatal(err)
	}
	return res
}

// moveAll is handOver, checking that all n connections moved.
func moveAll(t *testing.T, old, next *testServer, n int) handoff.Result {
	t.Helper()
	res := handOver(t, old, next)
	if res.Moved != n || res.Lost != 0 || res.FallenBack() != 0 || res.Err != nil {
		t.Fatalf("handoff: %+v, want %d moved and nothing else", res, n)
	}
	return res
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// 300 connections (two batches at least: at most 253 descriptors per message),
// each stopped in the middle of a frame, move from one Manager to another through
// a real socketpair; the clients finish the frame and go on: no GOAWAY, no ERROR,
// every report stored once, a resend of a report the first Manager acked is
// answered by the second without being stored (its window came along).
func TestHandoffMovesConnectionsMidFrame(t *testing.T) {
	old := startHandoffServer(t)
	next := startHandoffServer(t)
	const n = 300
	peers := make([]*testutil.Peer, n)
	since := map[string]time.Time{}
	for i := range peers {
		p := testutil.Dial(t, old.addr)
		p.Hello(fmt.Sprintf("agent-%d", i), "")
		sendReports(p, 1, 2, 3)
		expectAnswers(t, p, protocol.TypeAck, 1, 2, 3)
		peers[i] = p
	}
	for _, in := range old.m.Connections(0, n) {
		since[in.ClientID] = in.Since
	}
	// Half a REPORT each, which the old reader reads and holds.
	frame := protocol.AppendFrame(nil, protocol.TypeReport, 4, []byte(`{"x":1}`))
	cut := protocol.HeaderSize + 3
	for _, p := range peers {
		p.Write(frame[:cut])
	}
	waitPartial(t, old, cut)

	res := moveAll(t, old, next, n)
	if res.Batches < 2 {
		t.Fatalf("%d batches for %d connections, want at least 2 (253 per message)", res.Batches, n)
	}
	if got := old.m.Count(); got != 0 {
		t.Fatalf("old manager still has %d connections", got)
	}
	if got := next.m.Count(); got != n {
		t.Fatalf("new manager has %d connections, want %d", got, n)
	}
	for _, in := range next.m.Connections(0, n) {
		if !in.Since.Equal(since[in.ClientID]) {
			t.Fatalf("%s: connected_since %v, want the original %v", in.ClientID, in.Since, since[in.ClientID])
		}
	}
	for _, p := range peers {
		rest := append(append([]byte(nil), frame[cut:]...), protocol.AppendFrame(nil, protocol.TypeReport, 5, []byte(`{"x":1}`))...)
		p.Write(rest)
		sendReports(p, 2) // a resend of a report the old process acked
		expectAnswers(t, p, protocol.TypeAck, 4, 5, 2)
	}
	if got, want := old.spoolLines(), 3*n; got != want {
		t.Fatalf("old manager stored %d reports, want %d", got, want)
	}
	if got, want := next.spoolLines(), 2*n; got != want {
		t.Fatalf("new manager stored %d reports, want %d (the resend must not be stored)", got, want)
	}
	for _, r := range old.obs.closed() {
		if r != ReasonHandoff {
			t.Fatalf("old manager closed a connection for %s, want only %s", r, ReasonHandoff)
		}
	}
}

// stubSender stands for the new process: the first batch it moves into next by
// duplicating the descriptors (as SCM_RIGHTS would), later ones fail as if the
// process had died before acknowledging.
type stubSender struct {
	t       *testing.T
	next    *Manager
	mu      sync.Mutex
	calls   int
	results []error // of the batches posted and not yet acknowledged
}

// Post takes the batch; its acknowledgement says how it went.
func (s *stubSender) Post(fds []int, states [][]byte) error {
	err := s.take(fds, states)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = append(s.results, err)
	return nil
}

func (s *stubSender) Ack() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.results[0]
	s.results = s.results[1:]
	return err
}

func (s *stubSender) take(fds []int, states [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls > 1 {
		return errors.New("new process died")
	}
	for i, fd := range fds {
		dup, err := syscall.Dup(fd)
		if err != nil {
			return err
		}
		st, err := handoff.DecodeState(states[i])
		if err != nil {
			s.t.Errorf("state: %v", err)
			continue
		}
		if err := s.next.Adopt(os.NewFile(uintptr(dup), "moved"), st); err != nil {
			s.t.Errorf("adopt: %v", err)
		}
	}
	return nil
}

// The new process dies during the handoff: what it acknowledged lives on there,
// what was sent and not acknowledged is closed (as in a crash: the client
// reconnects and resends), and connections not yet sent (here: waiting for their
// commit, so not quiet) stay with the old process, which drains them with GOAWAY
// and keeps acking.
func TestHandoffReceiverDies(t *testing.T) {
	old := startHandoffServer(t)
	next := startHandoffServer(t)
	const idle, busy = 300, 10 // more than one batch of idle ones: the first moves, the second is lost
	var idlePeers, busyPeers []*testutil.Peer
	for i := range idle {
		p := testutil.Dial(t, old.addr)
		p.Hello(fmt.Sprintf("idle-%d", i), "")
		idlePeers = append(idlePeers, p)
	}
	hold := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) }) // before the servers' cleanups
	old.sp.mu.Lock()
	old.sp.hold = hold // commits wait: the busy connections have a report in flight
	old.sp.mu.Unlock()
	for i := range busy {
		p := testutil.Dial(t, old.addr)
		p.Hello(fmt.Sprintf("busy-%d", i), "")
		sendReports(p, 1)
		busyPeers = append(busyPeers, p)
	}
	waitFor(t, "the busy reports to be submitted", func() bool { return old.spoolLines() == busy })

	sender := &stubSender{t: t, next: next.m}
	// A short timeout is not needed: the failed send releases the busy ones at once.
	res := handoff.Drive(context.Background(), old.m.HandoffConns(), sender, time.Now().Add(20*time.Second))
	// Idle connections not yet quiet when the send failed fall back with the busy ones.
	if res.Err == nil || res.Moved == 0 || res.Lost == 0 || res.Moved+res.Lost+res.Fallback["channel"] != idle+busy || res.Fallback["channel"] < busy {
		t.Fatalf("handoff: %+v, want some moved, some lost, the rest (every busy one) fallen back for the channel", res)
	}
	if got := next.m.Count(); got != res.Moved {
		t.Fatalf("the new manager serves %d connections, the handoff moved %d", got, res.Moved)
	}
	old.sp.mu.Lock()
	old.sp.hold = nil
	old.sp.mu.Unlock()
	release.Do(func() { close(hold) })
	for _, p := range busyPeers {
		expectAnswers(t, p, protocol.TypeAck, 1) // still served by the old process
	}
	drained := make(chan struct{})
	go func() { defer close(drained); old.m.Drain(context.Background(), "upgrade") }()
	for _, p := range busyPeers {
		p.Expect(protocol.TypeGoaway)
	}
	served, lost := 0, 0
	for _, p := range idlePeers {
		sendReports(p, 7)
		for {
			f, err := p.Next(5 * time.Second)
			if err != nil {
				if isTimeout(err) {
					t.Fatalf("idle peer: no answer: %v", err)
				}
				lost++ // closed: it was sent and not acknowledged
				break
			}
			if f.Type == protocol.TypeGoaway {
				continue // fell back: the old process drains it
			}
			if f.Type != protocol.TypeAck || f.Seq != 7 {
				t.Fatalf("idle peer: got %s seq %d, want ACK 7", f.Type, f.Seq)
			}
			served++
			break
		}
		p.Conn.Close()
	}
	if lost != res.Lost || served != idle-res.Lost {
		t.Fatalf("clients: %d served and %d lost; the handoff lost %d of %d", served, lost, res.Lost, idle)
	}
	for _, p := range busyPeers {
		p.Conn.Close()
	}
	<-drained
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// corruptFirst forwards batches to a real channel, the first state message of the
// first batch replaced by one of an unknown version.
type corruptFirst struct {
	ch   *handoff.Channel
	done bool
}

func (c *corruptFirst) Post(fds []int, states [][]byte) error {
	if !c.done {
		c.done = true
		bad := append([]byte{9}, states[0][1:]...)
		states = append([][]byte{bad}, states[1:]...)
	}
	return c.ch.Post(fds, states)
}

func (c *corruptFirst) Ack() error { return c.ch.Ack() }

// A state message the new process cannot use: that connection gets ERROR
// handoff_failed naming the problem and is closed; the others move on.
func TestHandoffBadStateClosesThatConnectionOnly(t *testing.T) {
	old := startHandoffServer(t)
	next := startHandoffServer(t)
	const n = 5
	var peers []*testutil.Peer
	for i := range n {
		p := testutil.Dial(t, old.addr)
		p.Hello(fmt.Sprintf("agent-%d", i), "")
		peers = append(peers, p)
	}
	ch, received := receiveInto(t, next.m)
	res := handoff.Drive(context.Background(), old.m.HandoffConns(), &corruptFirst{ch: ch}, time.Now().Add(5*time.Second))
	ch.Done(nil)
	if err := received(); err != nil {
		t.Fatal(err)
	}
	if res.Moved != n {
		t.Fatalf("handoff: %+v, want %d moved (the receiver owns the bad one too)", res, n)
	}
	bad, good := 0, 0
	for _, p := range peers {
		sendReports(p, 1)
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case protocol.TypeAck:
			good++
		case protocol.TypeError:
			var e protocol.ErrorPayload
			if err := protocol.ParseJSON(f, &e); err != nil {
				t.Fatal(err)
			}
			if e.Code != protocol.CodeHandoffFailed || !strings.Contains(e.Message, "version 9") {
				t.Fatalf("ERROR %s %q, want handoff_failed naming the version", e.Code, e.Message)
			}
			p.ExpectClosed()
			bad++
		default:
			t.Fatalf("got %s", f.Type)
		}
	}
	if bad != 1 || good != n-1 {
		t.Fatalf("%d rejected and %d served, want 1 and %d", bad, good, n-1)
	}
}
