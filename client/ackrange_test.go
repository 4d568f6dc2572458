package client

import (
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// TestAckRangeFinishesEachReportOnce acks ranges of reports made by Go that are
// in every place a report can be when its ACK comes: in flight (finished by
// ackedLocked itself), waiting to be resent after a retryable NACK, and held for
// room on the connection (both finished by finishLocked), with every range sent
// twice. Each report's done must run exactly once, without error; no report may
// be written twice or stay behind in the outbox, the retry or the held list;
// and the pending set's oldest seq must follow the ACKs, or the ring fills with
// finished seqs.
func TestAckRangeFinishesEachReportOnce(t *testing.T) {
	const window, rounds = 8, 3000
	c, s := newPathClient(t, window)
	s.limit = window - 2 // the last two reports of a round are held
	calls := map[uint64]int{}
	done := func(seq uint64, err error) {
		if err != nil {
			t.Errorf("seq %d: %v", seq, err)
		}
		calls[seq]++
	}
	written := map[uint64]int{}
	var evs []sessionEvent
	issued := 0
	for round := range rounds {
		for range window {
			if err := c.Go([]byte("x"), done); err != nil {
				t.Fatal(err)
			}
			issued++
		}
		c.mu.Lock()
		first, last := c.out.pending.lo, c.out.pending.next-1
		c.mu.Unlock()
		// The first report in flight is NACKed, retryable, far from due.
		nack := &protocol.Nack{Code: "destination_unavailable", Retryable: true, RetryAfterMS: 60_000}
		evs = append(evs[:0], sessionEvent{kind: eventNacked, seq: first, nack: nack})
		c.sessionEvents(s, evs)
		c.mu.Lock()
		waiting, held := len(c.out.retry), len(c.out.held)
		c.mu.Unlock()
		if round == 0 && (waiting != 1 || held != 1) {
			// The NACK made room for one held report: one left held.
			t.Fatalf("%d waiting and %d held, want 1 and 1", waiting, held)
		}
		// The round's range, then the same range again, split.
		evs = append(evs[:0],
			sessionEvent{kind: eventAcked, seq: first, last: last},
			sessionEvent{kind: eventAcked, seq: first, last: first + 2},
			sessionEvent{kind: eventAcked, seq: first + 3, last: last})
		c.sessionEvents(s, evs)

		s.wmu.Lock()
		for out := s.out; len(out) > 0; {
			f, n, err := protocol.Decode(out, 1<<20)
			if err != nil || n == 0 {
				t.Fatalf("output: %d bytes undecodable (%v)", len(out), err)
			}
			if f.Type == protocol.TypeReport {
				written[f.Seq]++
			}
			out = out[n:]
		}
		s.out = s.out[:0]
		s.wmu.Unlock()

		c.mu.Lock()
		left, lo, next := c.out.len(), c.out.pending.lo, c.out.pending.next
		waiting, held = len(c.out.retry), len(c.out.held)
		inflight := s.inflight
		c.mu.Unlock()
		if left != 0 || lo != next || waiting != 0 || held != 0 || inflight != 0 {
			t.Fatalf("round %d: %d reports left, lo %d next %d, %d waiting, %d held, %d in flight: want none, lo = next",
				round, left, lo, next, waiting, held, inflight)
		}
		if got := c.window.inFlight(); got != 0 {
			t.Fatalf("round %d: %d window slots taken after every report was acked", round, got)
		}
	}
	if len(calls) != issued {
		t.Fatalf("done called for %d seqs, want %d", len(calls), issued)
	}
	for seq, n := range calls {
		if n != 1 {
			t.Fatalf("seq %d: done called %d times", seq, n)
		}
	}
	for seq, n := range written {
		if n != 1 {
			t.Fatalf("seq %d written %d times", seq, n)
		}
	}
	// Per round: window-2 written at Go, one more when the NACK made room.
	if want := rounds * (window - 1); len(written) != want {
		t.Fatalf("%d reports written, want %d", len(written), want)
	}
	c.mu.Lock()
	acked := c.acked
	c.mu.Unlock()
	if acked != uint64(issued) {
		t.Fatalf("acked %d, want %d", acked, issued)
	}
	if n := len(c.out.pending.ring); n > 2*window {
		t.Fatalf("pending ring grew to %d entries for a window of %d", n, window)
	}
}
