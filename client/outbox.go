package client

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// pending is one report between Report (or Go) and its outcome. Records are
// pooled: a report allocates nothing in steady state.
type pending struct {
	seq       uint64
	payload   []byte   // a copy: the caller may reuse its buffer, and a resend needs the bytes
	sess      *session // the connection it is in flight on; nil while queued or waiting to retry
	done      chan error
	sent      bool // sent at least once (the next send counts as a resend)
	abandoned bool // the caller's ctx ended; the report finishes silently
	waiting   bool // in outbox.retry
	held      bool // in outbox.held: waiting for room on the current connection
	// A report made by Go: its outcome goes to cb, not to the done channel.
	async    bool
	retryAt  int64
	attempts int // retryable NACKs so far: the retry backoff grows with them
	cb       func(seq uint64, err error)
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

func getPending() *pending { return pendingPool.Get().(*pending) }

func putPending(p *pending) {
	payload := p.payload[:0]
	if cap(payload) > 64<<10 {
		payload = nil // a one-off large report must not pin its buffer in the pool
	}
	*p = pending{payload: payload, done: p.done}
	pendingPool.Put(p)
}

func bySeq(a, b *pending) int { return cmp.Compare(a.seq, b.seq) }

// outbox holds every report accepted by Report or Go and not yet finished, assigns
// their seqs, and knows where each one is: in flight on a connection (rec.sess),
// waiting to be resent after a retryable NACK (in retry), waiting for room on the
// current connection, whose server allows fewer reports in flight than the
// client's window (in held), or queued for the next connection (none of these).
//
// It has no lock of its own: the Client's mu guards it, because a report's place
// changes together with the connection state the Client keeps (a GOAWAY, a dead
// connection, a new one), and one lock per report must stay one lock. It writes no
// frames either: the methods that place reports on a connection only do the
// bookkeeping, and the caller queues the frames.
//
// The batches it returns (takeUnplaced, takeFrom, takeDue) share one reused
// backing array: a caller gives a batch back with recycle before asking for the
// next one.
type outbox struct {
	nextSeq uint64
	pending pendingSet
	retry   []*pending // waiting for their retryAt, in NACK order
	held    []*pending // waiting for room on the current connection, in seq order
	scratch []*pending

	// The backoff between retries of a NACKed report.
	minBackoff, maxBackoff time.Duration
}

func newOutbox(firstSeq uint64, window int, minBackoff, maxBackoff time.Duration) outbox {
	return outbox{
		nextSeq:    firstSeq,
		pending:    newPendingSet(firstSeq, window),
		minBackoff: minBackoff,
		maxBackoff: maxBackoff,
	}
}

// len is the number of reports not finished yet.
func (o *outbox) len() int { return o.pending.len() }

// lookup returns the unfinished report with this seq, or nil (finished, or never ours).
func (o *outbox) lookup(seq uint64) *pending { return o.pending.get(seq) }

// add gives rec the next seq (seqs only increase, also across reconnects) and keeps
// it, queued, until remove.
func (o *outbox) add(rec *pending) uint64 {
	rec.seq = o.nextSeq
	o.nextSeq++
	o.pending.add(rec)
	return rec.seq
}

// sendOn marks rec in flight on s and says whether this send is a resend.
func (o *outbox) sendOn(s *session, rec *pending) (resend bool) {
	rec.sess = s
	s.inflight++
	resend = rec.sent
	rec.sent = true
	return resend
}

// sendAllOn marks recs in flight on s and returns how many of them are resends.
func (o *outbox) sendAllOn(s *session, recs []*pending) (resent int) {
	for _, r := range recs {
		if o.sendOn(s, r) {
			resent++
		}
	}
	return resent
}

// leave takes rec off the connection it is in flight on and returns that
// connection (nil if none): the caller may now retire it.
func (o *outbox) leave(rec *pending) *session {
	s := rec.sess
	if s != nil {
		rec.sess = nil
		s.inflight--
	}
	return s
}

// drop is remove for a report in neither retry nor held, leaving the pending
// set's oldest seq where it is: after a run of drops the caller calls
// o.pending.skipFinished.
func (o *outbox) drop(rec *pending) *session {
	o.pending.drop(rec.seq)
	return o.leave(rec)
}

// remove forgets a finished report and returns the connection it was in flight on
// (nil if none).
func (o *outbox) remove(rec *pending) *session {
	o.pending.remove(rec.seq)
	if rec.waiting {
		rec.waiting = false
		if i := slices.Index(o.retry, rec); i >= 0 {
			o.retry = slices.Delete(o.retry, i, i+1)
		}
	}
	if rec.held {
		rec.held = false
		if i := slices.Index(o.held, rec); i >= 0 {
			o.held = slices.Delete(o.held, i, i+1)
		}
	}
	return o.leave(rec)
}

// hold parks recs (unplaced, in seq order) until the current connection has room
// for them; takeHeld gives them back, oldest first.
func (o *outbox) hold(recs []*pending) {
	if len(recs) == 0 {
		return
	}
	sorted := len(o.held) == 0 || o.held[len(o.held)-1].seq < recs[0].seq
	for _, r := range recs {
		r.held = true
		o.held = append(o.held, r)
	}
	if !sorted {
		slices.SortFunc(o.held, bySeq)
	}
}

// holdOne parks a new report, the newest of all, until the current connection has
// room for it.
func (o *outbox) holdOne(rec *pending) {
	rec.held = true
	o.held = append(o.held, rec)
}

// takeHeld takes up to n held reports, oldest first.
func (o *outbox) takeHeld(n int) []*pending {
	n = min(n, len(o.held))
	batch := append(o.scratch[:0], o.held[:n]...)
	for _, r := range batch {
		r.held = false
	}
	rest := copy(o.held, o.held[n:])
	clear(o.held[rest:])
	o.held = o.held[:rest]
	return batch
}

// retryLater takes rec off its connection after a retryable NACK and parks it for
// a backoff from now that grows with each NACK of the same report, so a server
// with a failing disk is not hammered. It returns the connection rec left.
func (o *outbox) retryLater(rec *pending, now int64, hint time.Duration) *session {
	from := o.leave(rec)
	rec.waiting = true
	// The NACK's retry_after_ms is the server's word: never sooner, however early
	// the backoff would have been.
	rec.retryAt = now + int64(max(backoff(rec.attempts, o.minBackoff, o.maxBackoff), hint))
	rec.attempts++
	o.retry = append(o.retry, rec)
	return from
}

// takeUnplaced returns, in seq order, every report in flight nowhere: queued while
// disconnected, left over from a dead connection, held for room, or waiting to
// retry. Their retry waits are cancelled: a new connection takes them at once.
func (o *outbox) takeUnplaced() []*pending {
	batch := o.scratch[:0]
	o.pending.all(func(r *pending) {
		if r.sess == nil {
			r.waiting = false
			r.held = false
			batch = append(batch, r)
		}
	})
	clear(o.retry)
	o.retry = o.retry[:0]
	clear(o.held)
	o.held = o.held[:0]
	slices.SortFunc(batch, bySeq)
	return batch
}

// takeFrom takes every report in flight on s off it (s has ended) and returns them
// in seq order, now unplaced. Acked reports are long gone: they are never resent.
func (o *outbox) takeFrom(s *session) []*pending {
	batch := o.scratch[:0]
	o.pending.all(func(r *pending) {
		if r.sess == s {
			r.sess = nil
			batch = append(batch, r)
		}
	})
	s.inflight = 0
	slices.SortFunc(batch, bySeq)
	return batch
}

// takeDue takes the retries due at now off the retry list and returns them in seq
// order, with when the next one is due (0: none left waiting).
func (o *outbox) takeDue(now int64) (due []*pending, next int64) {
	due = o.scratch[:0]
	keep := o.retry[:0]
	for _, r := range o.retry {
		if r.retryAt <= now {
			r.waiting = false
			due = append(due, r)
			continue
		}
		keep = append(keep, r)
		if next == 0 || r.retryAt < next {
			next = r.retryAt
		}
	}
	clear(o.retry[len(keep):])
	o.retry = keep
	slices.SortFunc(due, bySeq)
	return due, next
}

// takeAll returns every unfinished report in seq order, where ever it is.
func (o *outbox) takeAll() []*pending {
	batch := o.scratch[:0]
	o.pending.all(func(r *pending) { batch = append(batch, r) })
	slices.SortFunc(batch, bySeq)
	return batch
}

// recycle gives a batch back for reuse, without keeping its records alive.
func (o *outbox) recycle(batch []*pending) {
	clear(batch)
	o.scratch = batch[:0]
}
