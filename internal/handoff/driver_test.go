package handoff

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// fakeConn is a connection without a socket: asking it starts its "reader", which
// runs Point.Quiesce as a real reader does once the read deadline woke it.
type fakeConn struct {
	id      int
	p       Point
	refuse  string // HandoffRequest's answer: it cannot move
	busy    bool   // never at its quiet point
	closes  bool   // closing for another reason once asked
	leaves  bool   // torn down once asked, before its quiet point
	fdErr   error  // HandoffFD fails with it
	fd      int    // HandoffFD's descriptor (0: the id)
	active  bool   // HandoffLastRead: just now, not an hour ago
	asked   *atomic.Int64
	mu      sync.Mutex
	closing bool
	ended   Verdict
	resumed chan struct{} // closed when the reader serves on
	done    chan struct{} // closed by the teardown
}

func (c *fakeConn) HandoffPoint() *Point { return &c.p }

func (c *fakeConn) HandoffRequest(run *Run) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != "" {
		return c.refuse
	}
	c.p.Request(run)
	c.asked.Add(1)
	go c.read()
	return ""
}

// read is the reader woken by the request.
func (c *fakeConn) read() {
	if c.leaves {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.teardown()
		return
	}
	if c.p.Quiesce(c) {
		c.teardown()
		return
	}
	close(c.resumed)
}

func (c *fakeConn) teardown() {
	c.p.Closed(c)
	time.Sleep(time.Millisecond) // Drive must wait for it
	close(c.done)
}

func (c *fakeConn) HandoffOutput() (sync.Locker, *bool) {
	if c.closes {
		c.closing = true // under mu: closing for another reason once asked
	}
	return &c.mu, &c.closing
}

func (c *fakeConn) HandoffIdle() bool { return !c.busy }

func (c *fakeConn) HandoffLastRead() int64 {
	if c.active {
		return mono.Now()
	}
	return mono.Now() - int64(time.Hour)
}

func (c *fakeConn) HandoffState() *State {
	return &State{Kind: KindNative, ClientID: strconv.Itoa(c.id), MaxFrame: 1, MaxInFlight: 1}
}

func (c *fakeConn) HandoffServeOn(bool) {}

func (c *fakeConn) HandoffLeft(v Verdict) { c.ended = v }

func (c *fakeConn) HandoffFD() (int, error) {
	if c.fd != 0 {
		return c.fd, c.fdErr
	}
	return c.id, c.fdErr
}

func (c *fakeConn) HandoffDone() <-chan struct{} { return c.done }

func fakeConns(n int, asked *atomic.Int64) ([]*fakeConn, []Conn) {
	fcs := make([]*fakeConn, n)
	cs := make([]Conn, n)
	for i := range fcs {
		fcs[i] = &fakeConn{id: i, asked: asked, resumed: make(chan struct{}), done: make(chan struct{})}
		cs[i] = fcs[i]
	}
	return fcs, cs
}

// recorder is a BatchSender that checks each batch. The acknowledgement of batch
// failAt (1-based; 0: never) fails, as does the post of batch postFailAt. With
// hold, it acknowledges a batch only once the window is full (or no more posts
// can come: n connections sent, or a post failed), so a driver that does not keep
// the window full never finishes.
type recorder struct {
	t          *testing.T
	asked      *atomic.Int64
	failAt     int
	postFailAt int
	hold       bool
	n          int // with hold: how many connections move in all

	mu         sync.Mutex
	batches    [][]int // posted, failed posts included
	acked      int     // acknowledgements asked for
	postFailed bool
	sent       map[int]bool
	maxOpen    int64 // most connections asked and not yet sent, at a post
	maxStopped int64 // most connections asked and not yet acknowledged, at a post
	maxFlight  int   // most batches posted and not acknowledged
}

var errBroken = errors.New("receiver gone")

func (r *recorder) Post(fds []int, states [][]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(fds) == 0 || len(fds) > batchSize || len(fds) != len(states) {
		r.t.Errorf("batch of %d descriptors, %d states", len(fds), len(states))
	}
	open := r.asked.Load()
	for _, b := range r.batches {
		open -= int64(len(b))
	}
	r.maxOpen = max(r.maxOpen, open)
	stopped := r.asked.Load()
	for _, b := range r.batches[:min(r.acked, len(r.batches))] {
		stopped -= int64(len(b))
	}
	r.maxStopped = max(r.maxStopped, stopped)
	for i, fd := range fds {
		if r.sent[fd] {
			r.t.Errorf("conn %d sent twice", fd)
		}
		r.sent[fd] = true
		st, err := DecodeState(states[i])
		if err != nil || st.ClientID != strconv.Itoa(fd) {
			r.t.Errorf("conn %d sent with state %q (%v)", fd, states[i], err)
		}
	}
	r.batches = append(r.batches, fds)
	r.maxFlight = max(r.maxFlight, len(r.batches)-r.acked)
	if len(r.batches) == r.postFailAt {
		r.postFailed = true
		return errBroken
	}
	return nil
}

func (r *recorder) Ack() error {
	deadline := time.Now().Add(5 * time.Second)
	for r.hold && !r.full() {
		if time.Now().After(deadline) {
			r.t.Errorf("the window of %d batches never filled", window)
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acked++
	if r.failAt > 0 && r.acked >= r.failAt {
		return errBroken
	}
	return nil
}

// full says the driver can post nothing more before this acknowledgement.
func (r *recorder) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)-r.acked >= window || len(r.sent) == r.n || r.postFailed
}

// verdicts is what each connection sent should have ended with: Moved for the
// batches acknowledged, Lost from the first failure on.
func (r *recorder) verdicts() map[int]Verdict {
	want := map[int]Verdict{}
	for i, b := range r.batches {
		v := Moved
		if (r.failAt > 0 && i+1 >= r.failAt) || (r.postFailAt > 0 && i+1 >= r.postFailAt) {
			v = Lost
		}
		for _, fd := range b {
			want[fd] = v
		}
	}
	return want
}

// waitResumed waits until c's reader serves on again.
func waitResumed(t *testing.T, c *fakeConn) {
	t.Helper()
	select {
	case <-c.resumed:
	case <-time.After(5 * time.Second):
		t.Fatalf("conn %d: the reader does not serve on", c.id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p.held || (c.closing && !c.closes && !c.leaves) {
		t.Errorf("conn %d serves on with its output closed", c.id)
	}
}

func accounted(t *testing.T, res Result, n int) {
	t.Helper()
	if got := res.Moved + res.Lost + res.FallenBack(); got != n {
		t.Errorf("%d of %d connections accounted for: %+v", got, n, res)
	}
}

// Every connection moves, once, in batches of at most batchSize; the driver keeps
// the window full, never has more than maxAsked asked and unsent, and returns
// after every teardown.
func TestDriveMovesEveryConnectionOnce(t *testing.T) {
	const n = 3*MaxFDs + 17
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, hold: true, n: n}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if res.Moved != n || res.Lost != 0 || res.FallenBack() != 0 || res.Err != nil || res.Batches != len(r.batches) {
		t.Fatalf("result %+v, %d batches sent", res, len(r.batches))
	}
	if r.maxOpen > maxAsked {
		t.Errorf("%d connections asked and not sent at once, the most is %d", r.maxOpen, maxAsked)
	}
	if r.maxFlight != window {
		t.Errorf("at most %d batches in flight, the window is %d", r.maxFlight, window)
	}
	// One pause per connection moved, none longer than the handoff.
	if pause := res.PauseQuantiles(0, 1); len(res.Pauses) != n || pause[1] > res.Duration || pause[0] <= 0 {
		t.Errorf("%d pauses, shortest %v, longest %v, handoff %v", len(res.Pauses), pause[0], pause[1], res.Duration)
	}
	for _, c := range fcs {
		select {
		case <-c.done:
		default:
			t.Fatalf("conn %d: Drive returned before its teardown", c.id)
		}
		if c.ended != Moved {
			t.Fatalf("conn %d ended %d, want moved", c.id, c.ended)
		}
	}
}

// Idle connections are asked a batch ahead of the one in flight; active ones (a
// read within activeWithin) are not: fewer than batchSize stop at once, so none
// waits for a batch before its own.
func TestDriveAsksActiveConnectionsOneBatchAtATime(t *testing.T) {
	const n = 3*MaxFDs + 17
	for _, active := range []bool{false, true} {
		var asked atomic.Int64
		fcs, cs := fakeConns(n, &asked)
		if active {
			for _, c := range fcs {
				c.active = true
			}
		}
		r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, hold: true, n: n}
		res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
		if res.Moved != n || res.Err != nil {
			t.Fatalf("active %v: result %+v", active, res)
		}
		switch {
		case active && r.maxStopped > batchSize:
			t.Errorf("active: %d connections stopped at once, the most is %d", r.maxStopped, batchSize)
		case !active && r.maxStopped != maxAsked:
			t.Errorf("idle: at most %d connections stopped at once, want %d: one batch asked ahead of the one in flight", r.maxStopped, maxAsked)
		}
	}
}

// Each connection that cannot move falls back for its own reason, the others move.
func TestDriveFallbackReasons(t *testing.T) {
	var asked atomic.Int64
	fcs, cs := fakeConns(8, &asked)
	fcs[0].refuse = "tls"
	fcs[1].refuse = "handshake"
	fcs[2].closes = true
	fcs[3].leaves = true
	fcs[4].busy = true
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
	res := Drive(context.Background(), cs, r, time.Now().Add(200*time.Millisecond))
	f := res.Fallback
	if res.Moved != 3 || f["tls"] != 1 || f["handshake"] != 1 || f["closing"] != 1 || f["closed"] != 1 || f["busy"]+f["timeout"] != 1 {
		t.Fatalf("result %+v", res)
	}
	accounted(t, res, 8)
	waitResumed(t, fcs[2])
	waitResumed(t, fcs[4])
	for _, c := range fcs[5:] {
		if c.ended != Moved {
			t.Errorf("conn %d ended %d, want moved", c.id, c.ended)
		}
	}
}

// checkVerdicts checks that each connection sent ended as the recorder says and
// that every other one asked serves on; and the counts agree.
func checkVerdicts(t *testing.T, fcs []*fakeConn, r *recorder, res Result) {
	t.Helper()
	accounted(t, res, len(fcs))
	want := r.verdicts()
	moved, lost := 0, 0
	for _, c := range fcs {
		if v, sent := want[c.id]; sent {
			if v == Moved {
				moved++
			} else {
				lost++
			}
			if c.ended != v {
				t.Errorf("conn %d ended %d, want %d", c.id, c.ended, v)
			}
		} else if c.p.state.Load() != stateNone { // asked: serves on
			waitResumed(t, c)
		}
	}
	if res.Moved != moved || res.Lost != lost || res.Fallback[ReasonChannel] != len(fcs)-moved-lost {
		t.Errorf("result %+v; the batches say %d moved, %d lost", res, moved, lost)
	}
}

// An acknowledgement that fails loses its batch and every batch posted after it
// (the window is full when it fails); the batch before it moved; what was not
// posted falls back ("channel") and serves on, quiet or not.
func TestDriveBrokenChannel(t *testing.T) {
	for range 3 {
		const n = 3 * MaxFDs
		var asked atomic.Int64
		fcs, cs := fakeConns(n, &asked)
		r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, failAt: 2, hold: true, n: n}
		res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
		if !errors.Is(res.Err, errBroken) || len(r.batches) < window || res.Batches != 1 {
			t.Fatalf("result %+v after %d posts", res, len(r.batches))
		}
		if res.Moved != len(r.batches[0]) {
			t.Fatalf("result %+v, first batch of %d", res, len(r.batches[0]))
		}
		checkVerdicts(t, fcs, r, res)
	}
}

// A post that fails loses that batch; the batches posted before it are settled by
// their acknowledgements (moved); the rest falls back.
func TestDrivePostFails(t *testing.T) {
	const n = 3 * MaxFDs
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, postFailAt: window, hold: true, n: n}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if !errors.Is(res.Err, errBroken) || len(r.batches) != window || res.Batches != window-1 {
		t.Fatalf("result %+v after %d posts", res, len(r.batches))
	}
	if res.Lost != len(r.batches[window-1]) {
		t.Fatalf("result %+v, the failed post had %d", res, len(r.batches[window-1]))
	}
	checkVerdicts(t, fcs, r, res)
}

// A batch that cannot be sent at all (no descriptor) falls back, exactly its
// connections, rather than being lost: nothing of it reached the receiver. The
// batches in flight before it move.
func TestDriveUnsentBatchFallsBack(t *testing.T) {
	const n = 10 * batchSize
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	bad := fcs[4*batchSize+5]
	bad.fdErr = errors.New("not a socket")
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if res.Err == nil || res.Lost != 0 || r.sent[bad.id] || res.Moved != len(r.sent) || res.Batches != len(r.batches) {
		t.Fatalf("result %+v after %d posts", res, len(r.batches))
	}
	checkVerdicts(t, fcs, r, res)
	waitResumed(t, bad)
}

// Cancelling ctx releases every connection not yet quiet, asked or not.
func TestDriveInterrupted(t *testing.T) {
	const n = maxAsked + 10 // some are never asked
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	for _, c := range fcs {
		c.busy = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
	start := time.Now()
	res := Drive(ctx, cs, r, time.Now().Add(time.Minute))
	if res.Fallback["interrupted"] != n || len(r.batches) != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("result %+v in %v", res, time.Since(start))
	}
	if asked.Load() != maxAsked {
		t.Errorf("%d asked, want %d", asked.Load(), maxAsked)
	}
	for _, c := range fcs[:maxAsked] {
		waitResumed(t, c)
	}
}

// Over a real channel, a receiver that acknowledges some batches and then goes
// away with more in flight: exactly the connections of the batches it
// acknowledged move, those posted after are lost, the rest fall back and serve on.
func TestDriveReceiverGoneMidway(t *testing.T) {
	for _, keep := range []int{0, 1, 5} {
		p, child := channelPair(t)
		const n = 1000
		fds, _ := pipes(t, n)
		var asked atomic.Int64
		fcs, cs := fakeConns(n, &asked)
		for i, c := range fcs {
			c.fd = fds[i]
		}
		acked := make(chan map[int]bool, 1)
		go func() {
			defer child.Close()
			ids := map[int]bool{}
			defer func() { acked <- ids }()
			for range keep {
				b, err := child.recv(newOOB())
				if err != nil {
					t.Errorf("batch: %v", err)
					return
				}
				for _, f := range b.Files {
					var id [2]byte
					if _, err := f.Read(id[:]); err != nil {
						t.Errorf("descriptor: %v", err)
					}
					ids[int(id[0])|int(id[1])<<8] = true
					f.Close()
				}
				ack := [ackSize]byte{'H', 'W', 'K', 'A'}
				binary.BigEndian.PutUint32(ack[4:], uint32(len(b.Files)))
				if _, err := child.uc.Write(ack[:]); err != nil {
					t.Errorf("ack: %v", err)
					return
				}
			}
			if b, err := child.recv(newOOB()); err == nil { // in flight, never acknowledged
				b.close()
			}
		}()
		res := Drive(context.Background(), cs, p.Parent, time.Now().Add(10*time.Second))
		moved := <-acked
		if res.Err == nil || res.Batches != keep || res.Moved != len(moved) {
			t.Fatalf("keep %d: result %+v, %d acknowledged", keep, res, len(moved))
		}
		accounted(t, res, n)
		lost := 0
		for _, c := range fcs {
			switch {
			case moved[c.id]:
				if c.ended != Moved {
					t.Errorf("keep %d: conn %d ended %d, want moved", keep, c.id, c.ended)
				}
			case c.ended == Lost:
				lost++
			case c.ended != 0:
				t.Errorf("keep %d: conn %d ended %d, not acknowledged", keep, c.id, c.ended)
			case c.p.state.Load() != stateNone:
				waitResumed(t, c)
			}
		}
		if lost != res.Lost || lost == 0 || lost > window*batchSize {
			t.Errorf("keep %d: %d lost, result %+v", keep, lost, res)
		}
	}
}
