package handoff

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

func (c *fakeConn) HandoffState() *State { return &State{ClientID: strconv.Itoa(c.id)} }

func (c *fakeConn) HandoffServeOn(bool) {}

func (c *fakeConn) HandoffLeft(v Verdict) { c.ended = v }

func (c *fakeConn) HandoffFD() (int, error) { return c.id, c.fdErr }

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

// recorder is a BatchSender that checks each batch and fails from batch failAt on.
type recorder struct {
	t       *testing.T
	asked   *atomic.Int64
	failAt  int // 1-based; 0: never
	batches [][]int
	sent    map[int]bool
	maxOpen int64 // most connections asked and not yet sent, at a send
}

var errBroken = errors.New("receiver gone")

func (r *recorder) Send(fds []int, states [][]byte) error {
	if len(fds) == 0 || len(fds) > batchSize || len(fds) != len(states) {
		r.t.Errorf("batch of %d descriptors, %d states", len(fds), len(states))
	}
	open := r.asked.Load()
	for _, b := range r.batches {
		open -= int64(len(b))
	}
	r.maxOpen = max(r.maxOpen, open)
	for i, fd := range fds {
		if r.sent[fd] {
			r.t.Errorf("conn %d sent twice", fd)
		}
		r.sent[fd] = true
		if !strings.Contains(string(states[i]), `"client_id":"`+strconv.Itoa(fd)+`"`) {
			r.t.Errorf("conn %d sent with state %q", fd, states[i])
		}
	}
	r.batches = append(r.batches, fds)
	if r.failAt > 0 && len(r.batches) >= r.failAt {
		return errBroken
	}
	return nil
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

// Every connection moves, once, in batches of at most batchSize; the driver never
// has more than a wave asked and unsent, and returns after every teardown.
func TestDriveMovesEveryConnectionOnce(t *testing.T) {
	const n = 3*MaxFDs + 17
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if res.Moved != n || res.Lost != 0 || res.FallenBack() != 0 || res.Err != nil || res.Batches != len(r.batches) {
		t.Fatalf("result %+v, %d batches sent", res, len(r.batches))
	}
	if r.maxOpen > wave {
		t.Errorf("%d connections asked and not sent at once, the wave is %d", r.maxOpen, wave)
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

// A batch the receiver does not acknowledge is lost; what was not sent falls back
// ("channel") and serves on, quiet or not.
func TestDriveBrokenChannel(t *testing.T) {
	const n = 3 * MaxFDs
	var asked atomic.Int64
	fcs, cs := fakeConns(n, &asked)
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}, failAt: 2}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if !errors.Is(res.Err, errBroken) || len(r.batches) != 2 || res.Batches != 1 {
		t.Fatalf("result %+v after %d sends", res, len(r.batches))
	}
	if res.Moved != len(r.batches[0]) || res.Lost != len(r.batches[1]) || res.Fallback["channel"] != n-res.Moved-res.Lost {
		t.Fatalf("result %+v, batches of %d and %d", res, len(r.batches[0]), len(r.batches[1]))
	}
	accounted(t, res, n)
	want := map[int]Verdict{}
	for i, b := range r.batches {
		for _, fd := range b {
			want[fd] = Moved + Verdict(i)
		}
	}
	for _, c := range fcs {
		if v, sent := want[c.id]; sent {
			if c.ended != v {
				t.Errorf("conn %d ended %d, want %d", c.id, c.ended, v)
			}
		} else if c.p.state.Load() != stateNone { // asked: serves on
			waitResumed(t, c)
		}
	}
}

// A batch that cannot be sent at all (no descriptor) falls back rather than being
// lost: nothing reached the receiver.
func TestDriveUnsentBatchFallsBack(t *testing.T) {
	var asked atomic.Int64
	fcs, cs := fakeConns(3, &asked)
	fcs[1].fdErr = errors.New("not a socket")
	r := &recorder{t: t, asked: &asked, sent: map[int]bool{}}
	res := Drive(context.Background(), cs, r, time.Now().Add(10*time.Second))
	if res.Err == nil || res.Lost != 0 || r.sent[1] || res.Moved != len(r.sent) || res.Fallback["channel"] != 3-len(r.sent) {
		t.Fatalf("result %+v after %d sends", res, len(r.batches))
	}
	for _, c := range fcs {
		if r.sent[c.id] {
			if c.ended != Moved {
				t.Errorf("conn %d ended %d, want moved", c.id, c.ended)
			}
		} else {
			waitResumed(t, c)
		}
	}
}

// Cancelling ctx releases every connection not yet quiet, asked or not.
func TestDriveInterrupted(t *testing.T) {
	const n = wave + 10 // some are never asked
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
	if asked.Load() != wave {
		t.Errorf("%d asked, want a wave of %d", asked.Load(), wave)
	}
	for _, c := range fcs[:wave] {
		waitResumed(t, c)
	}
}
