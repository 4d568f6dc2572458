package legacy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// adopter is a BatchSender that hands each descriptor straight to a Listener, as
// the new process does: SCM_RIGHTS gives the receiver a duplicate, so does Dup.
type adopter struct {
	t      *testing.T
	to     *Listener
	states []*handoff.State
	err    error // a batch fails with it, having adopted nothing
	// results of the batches posted and not yet acknowledged
	mu      sync.Mutex
	results []error
}

// Post adopts the batch at once; its acknowledgement says how it went.
func (a *adopter) Post(fds []int, states [][]byte) error {
	err := a.take(fds, states)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.results = append(a.results, err)
	return nil
}

func (a *adopter) Ack() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.results[0]
	a.results = a.results[1:]
	return err
}

func (a *adopter) take(fds []int, states [][]byte) error {
	if a.err != nil {
		return a.err
	}
	for i, fd := range fds {
		st, err := handoff.DecodeState(states[i])
		if err != nil {
			a.t.Fatalf("state %d: %v", i, err)
		}
		a.states = append(a.states, st)
		dup, err := syscall.Dup(fd)
		if err != nil {
			a.t.Fatal(err)
		}
		if err := a.to.Adopt(os.NewFile(uintptr(dup), "adopted"), st); err != nil {
			a.t.Fatal(err)
		}
	}
	return nil
}

func ffffReport(content string) []byte {
	return AppendFFFFPacket(nil, FFFFReport, []byte(`{"content":"`+content+`"}`))
}

func readLines(t *testing.T, rd *bufio.Reader, nc net.Conn, n int) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		line, err := rd.ReadString('\n')
		if err != nil || line != FFFFReportReply {
			t.Fatalf("receipt %d: %q, %v", i, line, err)
		}
	}
}

// waitRead waits until the listener's only connection has read n bytes.
func waitRead(t *testing.T, l *Listener, n int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool {
		infos := l.Connections(0, 1)
		return len(infos) == 1 && infos[0].BytesIn == uint64(n)
	}, "the server to read %d bytes", n)
}

// A connection moves at its quiet point with the half frame it had read: the new
// listener completes that frame with the bytes that follow, under the same client
// id, with seqs counting on from the old process's. The old process closes its copy
// without a word (reason handoff); the agent notices nothing.
func TestHandOffMovesConnectionWithPartialFrame(t *testing.T) {
	old := newHarness(t, FormatFFFF, nil, nil)
	next := newHarness(t, FormatFFFF, nil, nil)
	nc := old.dial()
	rd := bufio.NewReader(nc)
	sent := 0
	for i := range 5 {
		b := ffffReport("before-" + string(rune('a'+i)))
		nc.Write(b)
		sent += len(b)
	}
	readLines(t, rd, nc, 5)
	half := ffffReport("split")
	nc.Write(half[:len(half)/2])
	sent += len(half) / 2
	waitRead(t, old.l, sent)

	a := &adopter{t: t, to: next.l}
	res := handoff.Drive(context.Background(), old.l.HandoffConns(), a, time.Now().Add(5*time.Second))
	if res.Moved != 1 || res.Lost != 0 || len(res.Fallback) != 0 || res.Err != nil {
		t.Fatalf("HandOff: %+v", res)
	}
	if st := a.states[0]; len(st.Partial) != len(half)/2 || st.Listener != "test-ffff" || st.Format != "ffff" || st.ClientID != "ffff:"+nc.LocalAddr().String() {
		t.Fatalf("state: %+v", st)
	}
	if old.l.Count() != 0 || old.obs.get(func() int { return old.obs.closed[ReasonHandoff] }) != 1 {
		t.Fatalf("old listener: %d connections, closed %v", old.l.Count(), old.obs.closed)
	}
	nc.Write(half[len(half)/2:])
	nc.Write(ffffReport("after"))
	readLines(t, rd, nc, 2)

	before, after := readSpool(t, old.spool), readSpool(t, next.spool)
	if len(before) != 5 || len(after) != 2 {
		t.Fatalf("%d records before, %d after; want 5, 2", len(before), len(after))
	}
	if string(after[0].Payload) != `{"content":"split"}` || after[0].ClientID != before[0].ClientID {
		t.Fatalf("first record after the move: %+v", after[0])
	}
	if after[0].Seq != before[4].Seq+1 || after[1].Seq != after[0].Seq+1 {
		t.Fatalf("seqs %d…%d then %d, %d: want them to count on", before[0].Seq, before[4].Seq, after[0].Seq, after[1].Seq)
	}
}

// A peer the new listener's allow no longer permits is closed by the new process,
// as a reload would.
func TestAdoptClosesPeerNoLongerAllowed(t *testing.T) {
	old := newHarness(t, FormatFFFF, nil, nil)
	next := newHarness(t, FormatFFFF, &Settings{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		IdleTimeout: time.Minute, MaxFrameSize: FormatFFFF.MaxDataSize()}, nil)
	nc := old.dial()
	rd := bufio.NewReader(nc)
	nc.Write(ffffReport("x"))
	readLines(t, rd, nc, 1)
	res := handoff.Drive(context.Background(), old.l.HandoffConns(), &adopter{t: t, to: next.l}, time.Now().Add(5*time.Second))
	if res.Moved != 1 {
		t.Fatalf("HandOff: %+v", res)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rd.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read after the move: %v; want the connection closed", err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return next.obs.get(func() int { return next.obs.closed[ReasonNotAllowed] }) == 1 },
		"the close counted as not_allowed")
}

// A batch the new process never acknowledged is lost: the old process closes it
// (reason handoff_lost) rather than resume a socket the other may have read from.
func TestHandOffUnacknowledgedBatchIsLost(t *testing.T) {
	old := newHarness(t, FormatFFFF, nil, nil)
	nc := old.dial()
	rd := bufio.NewReader(nc)
	nc.Write(ffffReport("x"))
	readLines(t, rd, nc, 1)
	res := handoff.Drive(context.Background(), old.l.HandoffConns(), &adopter{t: t, err: errors.New("channel broke")}, time.Now().Add(5*time.Second))
	if res.Lost != 1 || res.Moved != 0 || res.Err == nil {
		t.Fatalf("HandOff: %+v", res)
	}
	if n := old.obs.get(func() int { return old.obs.closed[ReasonHandoffLost] }); n != 1 || old.l.Count() != 0 {
		t.Fatalf("closed handoff_lost %d, %d left", n, old.l.Count())
	}
}

// A connection whose reply is not written by the deadline (its commit never
// comes) falls back and is served on by the old process.
func TestHandOffBusyConnectionFallsBack(t *testing.T) {
	hold := make(chan struct{})
	old := newHarness(t, FormatFFFF, nil, nil)
	gate := &gated{next: old.dest, open: hold}
	old.l.dest = gate
	nc := old.dial()
	rd := bufio.NewReader(nc)
	b := ffffReport("held")
	nc.Write(b)
	waitRead(t, old.l, len(b))
	res := handoff.Drive(context.Background(), old.l.HandoffConns(), &adopter{t: t, to: nil}, time.Now().Add(50*time.Millisecond))
	if res.Moved != 0 || res.Fallback["busy"]+res.Fallback["timeout"] != 1 {
		t.Fatalf("HandOff: %+v", res)
	}
	close(hold)
	readLines(t, rd, nc, 1) // the held report's receipt, from the old process
	nc.Write(ffffReport("more"))
	readLines(t, rd, nc, 1)
}

// gated stores at once but holds each commit's news until open is closed.
type gated struct {
	next ingest.Destination
	open chan struct{}
}

func (g *gated) Submit(b *ingest.Batch, w ingest.Waiter) {
	g.next.Submit(b, waiterFunc(func(seqs []uint64, err error) {
		seqs = slices.Clone(seqs)
		go func() { <-g.open; w.Committed(seqs, err) }()
	}))
}

type waiterFunc func([]uint64, error)

func (f waiterFunc) Committed(seqs []uint64, err error) { f(seqs, err) }

// headers has no reply: its quiet point is the reader stopped, and the partial
// message completes on the new listener with seqs counting on.
func TestHandOffHeadersWithPartialMessage(t *testing.T) {
	old := newHarness(t, FormatHeaders, nil, nil)
	next := newHarness(t, FormatHeaders, nil, nil)
	nc := old.dial()
	var stream []byte
	for i := range 10 {
		stream = AppendHeaders(stream, report(i))
	}
	split := AppendHeaders(nil, report(10))
	stream = append(stream, split[:7]...)
	nc.Write(stream)
	waitRead(t, old.l, len(stream))
	testutil.Eventually(t, 5*time.Second, func() bool { return old.obs.stored.Load() == 10 }, "10 stored")
	res := handoff.Drive(context.Background(), old.l.HandoffConns(), &adopter{t: t, to: next.l}, time.Now().Add(5*time.Second))
	if res.Moved != 1 || len(res.Fallback) != 0 {
		t.Fatalf("HandOff: %+v", res)
	}
	nc.Write(append(split[7:], AppendHeaders(nil, report(11))...))
	testutil.Eventually(t, 5*time.Second, func() bool { return next.obs.stored.Load() == 2 }, "2 stored by the new listener")
	before, after := readSpool(t, old.spool), readSpool(t, next.spool)
	if len(before) != 10 || len(after) != 2 || string(after[0].Payload) != string(report(10)) || after[0].Seq != before[9].Seq+1 {
		t.Fatalf("before %d, after %+v", len(before), after)
	}
}

// A state of another format is refused: the socket is closed, nothing served.
func TestAdoptRefusesOtherFormat(t *testing.T) {
	next := newHarness(t, FormatC8C9, nil, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st := &handoff.State{Kind: handoff.KindLegacy, ClientID: "ffff:127.0.0.1:1", Listener: "test-c8c9", Format: "ffff", MaxFrame: 10}
	if err := next.l.Adopt(r, st); err == nil || next.l.Count() != 0 {
		t.Fatalf("Adopt of an ffff state on a c8c9 listener: %v, %d connections", err, next.l.Count())
	}
}
