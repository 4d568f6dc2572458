package client

// doneQueue holds the reports made by Go that finished while the Client's mu was
// held. Their done must not run under the lock (it may call Go, which takes it),
// so they wait here until the lock is released (Client.unlock). The list is
// linked through pending.next: queueing allocates nothing.
type doneQueue struct {
	head, tail *pending
}

func (q *doneQueue) push(rec *pending) {
	if q.tail == nil {
		q.head = rec
	} else {
		q.tail.next = rec
	}
	q.tail = rec
}

func (q *doneQueue) empty() bool { return q.head == nil }

// take empties the queue and returns its list, in the order the reports finished.
func (q *doneQueue) take() *pending {
	rec := q.head
	q.head, q.tail = nil, nil
	return rec
}

// callDone calls the done of every report in list, in order. Each record goes back
// to the pool before its done runs, so a Go from done may reuse it.
func callDone(list *pending) {
	for rec := list; rec != nil; {
		next := rec.next
		cb, seq, err := rec.cb, rec.seq, rec.err
		putPending(rec)
		if cb != nil {
			cb(seq, err)
		}
		rec = next
	}
}
