package client

import (
	"slices"
	"testing"
	"time"
)

const (
	testMinBackoff = 10 * time.Millisecond
	testMaxBackoff = 80 * time.Millisecond
)

func newTestOutbox(firstSeq uint64) outbox {
	return newOutbox(firstSeq, 8, testMinBackoff, testMaxBackoff)
}

// addN adds n fresh records and returns them in seq order.
func addN(o *outbox, n int) []*pending {
	recs := make([]*pending, n)
	for i := range recs {
		recs[i] = &pending{}
		o.add(recs[i])
	}
	return recs
}

func seqsOf(recs []*pending) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.seq
	}
	return out
}

func TestOutboxSeqAssignment(t *testing.T) {
	o := newTestOutbox(1000)
	recs := addN(&o, 5)
	if got, want := seqsOf(recs), []uint64{1000, 1001, 1002, 1003, 1004}; !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}
	if o.len() != 5 {
		t.Fatalf("len %d, want 5", o.len())
	}
	for _, r := range recs {
		if o.lookup(r.seq) != r {
			t.Fatalf("lookup(%d) is not the record added", r.seq)
		}
	}
	// A finished seq is never handed out again.
	o.remove(recs[4])
	if o.lookup(1004) != nil {
		t.Fatal("a removed record is still found")
	}
	if seq := o.add(&pending{}); seq != 1005 {
		t.Fatalf("seq after a removal %d, want 1005 (seqs only increase)", seq)
	}
	if o.lookup(999) != nil {
		t.Fatal("lookup of a seq never added found a record")
	}
}

func TestOutboxPendingAndPlacement(t *testing.T) {
	o := newTestOutbox(1)
	s := &session{}
	recs := addN(&o, 4)
	for _, r := range recs {
		if r.sess != nil || r.sent {
			t.Fatalf("a new record is placed: %+v", r)
		}
	}
	if o.sendOn(s, recs[1]) {
		t.Fatal("the first send of a record counted as a resend")
	}
	if recs[1].sess != s || !recs[1].sent || s.inflight != 1 {
		t.Fatalf("after sendOn: sess %p sent %v inflight %d", recs[1].sess, recs[1].sent, s.inflight)
	}
	// Only the reports in flight nowhere are taken, in seq order.
	batch := o.takeUnplaced()
	if got, want := seqsOf(batch), []uint64{1, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("unplaced %v, want %v", got, want)
	}
	o.recycle(batch)

	// remove finishes a report and names the connection it was in flight on.
	if from := o.remove(recs[1]); from != s {
		t.Fatalf("remove returned %p, want the session it was on", from)
	}
	if s.inflight != 0 || recs[1].sess != nil || o.len() != 3 {
		t.Fatalf("after remove: inflight %d, sess %p, len %d", s.inflight, recs[1].sess, o.len())
	}
	if from := o.remove(recs[0]); from != nil {
		t.Fatalf("remove of a queued report returned %p, want nil", from)
	}
}

// TestOutboxResendOrderAfterReconnect: when a connection ends, what was in flight
// on it (and only that) comes back in seq order, and goes out on the next
// connection as resends, together with the reports queued meanwhile, in seq order.
func TestOutboxResendOrderAfterReconnect(t *testing.T) {
	o := newTestOutbox(1)
	dead, other := &session{}, &session{}
	recs := addN(&o, 6) // seqs 1..6
	// Sent in an order other than seq order, as retries can make it.
	for _, i := range []int{3, 0, 2} {
		o.sendOn(dead, recs[i])
	}
	o.sendOn(other, recs[1])
	// 5 and 6 stay queued.

	moved := o.takeFrom(dead)
	if got, want := seqsOf(moved), []uint64{1, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("taken from the dead connection %v, want %v in seq order", got, want)
	}
	if dead.inflight != 0 {
		t.Fatalf("dead connection still counts %d in flight", dead.inflight)
	}
	for _, r := range moved {
		if r.sess != nil {
			t.Fatalf("seq %d still points at the dead connection", r.seq)
		}
	}
	if recs[1].sess != other || other.inflight != 1 {
		t.Fatal("a report in flight on another connection was moved")
	}
	o.recycle(moved)

	// The next connection takes every unplaced report, in seq order; those sent
	// before count as resends.
	next := &session{}
	batch := o.takeUnplaced()
	if got, want := seqsOf(batch), []uint64{1, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("sent on the new connection %v, want %v", got, want)
	}
	if resent := o.sendAllOn(next, batch); resent != 3 {
		t.Fatalf("%d resends, want 3 (seqs 1, 3, 4)", resent)
	}
	if next.inflight != 5 {
		t.Fatalf("new connection counts %d in flight, want 5", next.inflight)
	}
	o.recycle(batch)
	if batch := o.takeUnplaced(); len(batch) != 0 {
		t.Fatalf("still unplaced after the resend: %v", seqsOf(batch))
	}
}

func TestOutboxRetryAfterNack(t *testing.T) {
	o := newTestOutbox(1)
	s := &session{}
	recs := addN(&o, 3)
	for _, r := range recs {
		o.sendOn(s, r)
	}
	now := int64(1_000_000_000)

	// NACKed in the order 3, 1: parked off the connection.
	for _, r := range []*pending{recs[2], recs[0]} {
		if from := o.retryLater(r, now, 0); from != s {
			t.Fatalf("retryLater returned %p, want the session", from)
		}
		if r.sess != nil || !r.waiting || r.attempts != 1 {
			t.Fatalf("seq %d after retryLater: sess %p waiting %v attempts %d", r.seq, r.sess, r.waiting, r.attempts)
		}
		if r.retryAt < now || r.retryAt >= now+int64(testMinBackoff) {
			t.Fatalf("first retry of seq %d at +%v, want within the first backoff [0, %v)", r.seq, time.Duration(r.retryAt-now), testMinBackoff)
		}
	}
	if s.inflight != 1 {
		t.Fatalf("connection counts %d in flight, want 1", s.inflight)
	}

	// Not due yet: nothing taken, and next says when.
	due, next := o.takeDue(now - 1)
	if len(due) != 0 {
		t.Fatalf("retries taken before they were due: %v", seqsOf(due))
	}
	if want := min(recs[0].retryAt, recs[2].retryAt); next != want {
		t.Fatalf("next retry at %d, want %d", next, want)
	}
	o.recycle(due)

	// Due: both taken, in seq order, and resent.
	due, next = o.takeDue(now + int64(testMinBackoff))
	if got, want := seqsOf(due), []uint64{1, 3}; !slices.Equal(got, want) || next != 0 {
		t.Fatalf("due %v next %d, want %v and 0", got, next, want)
	}
	for _, r := range due {
		if r.waiting {
			t.Fatalf("seq %d taken but still marked waiting", r.seq)
		}
	}
	if resent := o.sendAllOn(s, due); resent != 2 {
		t.Fatalf("%d resends, want 2", resent)
	}
	o.recycle(due)

	// A second NACK of the same report backs off longer: up to twice the minimum.
	o.retryLater(recs[0], now, 0)
	if recs[0].attempts != 2 || recs[0].retryAt >= now+int64(2*testMinBackoff) {
		t.Fatalf("second retry: attempts %d at +%v", recs[0].attempts, time.Duration(recs[0].retryAt-now))
	}
	// A retry that finishes meanwhile (an ACK from an older connection) leaves the list.
	o.remove(recs[0])
	if len(o.retry) != 0 {
		t.Fatalf("a finished report is still waiting to retry")
	}
	// A new connection takes waiting retries at once.
	o.retryLater(recs[1], now, 0)
	batch := o.takeUnplaced()
	if got := seqsOf(batch); !slices.Equal(got, []uint64{2}) || recs[1].waiting || len(o.retry) != 0 {
		t.Fatalf("takeUnplaced %v, waiting %v, retry list %d", got, recs[1].waiting, len(o.retry))
	}
	o.recycle(batch)
}

// A NACK's retry_after_ms is a floor: never sooner, however short the backoff.
func TestOutboxRetryHint(t *testing.T) {
	o := newTestOutbox(1)
	s := &session{}
	recs := addN(&o, 1)
	o.sendOn(s, recs[0])
	hint := 10 * testMaxBackoff
	o.retryLater(recs[0], 1000, hint)
	if recs[0].retryAt < 1000+int64(hint) {
		t.Fatalf("retry with a %v hint at +%v", hint, time.Duration(recs[0].retryAt-1000))
	}
}

func TestOutboxTakeAll(t *testing.T) {
	o := newTestOutbox(7)
	s := &session{}
	recs := addN(&o, 4)
	o.sendOn(s, recs[2])
	o.retryLater(recs[2], 0, 0)
	o.sendOn(s, recs[0])
	all := o.takeAll()
	if got, want := seqsOf(all), []uint64{7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Fatalf("takeAll %v, want %v", got, want)
	}
	o.recycle(all)
	if cap(o.scratch) == 0 || len(o.scratch) != 0 {
		t.Fatal("recycle did not keep the batch for reuse")
	}
	if o.scratch[:4][0] != nil {
		t.Fatal("a recycled batch keeps its records alive")
	}
}

// BenchmarkOutboxCycle is the outbox's share of one report at a full window: a
// report added, later found by its ACK's seq and removed.
func BenchmarkOutboxCycle(b *testing.B) {
	o := newOutbox(1, 64, testMinBackoff, testMaxBackoff)
	recs := make([]pending, 64)
	for i := range recs {
		o.add(&recs[i])
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &recs[i%len(recs)]
		if o.lookup(r.seq) != r {
			b.Fatal("lost a report")
		}
		o.remove(r)
		o.add(r)
	}
}
