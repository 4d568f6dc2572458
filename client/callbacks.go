package client

// doneCall is the outcome of a report made by Go, waiting for its done to be
// called. It holds what done needs, not the record: the record goes back for
// reuse as soon as the report finishes.
type doneCall struct {
	cb  func(seq uint64, err error)
	seq uint64
	err error
}

// doneQueue holds the outcomes of reports made by Go that finished while the
// Client's mu was held. Their done must not run under the lock (it may call Go,
// which takes it), so they wait here until the lock is released (Client.unlock,
// Client.callDoneOn).
type doneQueue struct {
	calls []doneCall
}

func (q *doneQueue) push(cb func(seq uint64, err error), seq uint64, err error) {
	q.calls = append(q.calls, doneCall{cb: cb, seq: seq, err: err})
}

func (q *doneQueue) empty() bool { return len(q.calls) == 0 }

// take empties the queue and returns its calls, in the order the reports
// finished; spare, emptied, becomes the queue's buffer (nil: a new one is
// allocated by the next push).
func (q *doneQueue) take(spare []doneCall) []doneCall {
	list := q.calls
	q.calls = spare[:0]
	return list
}

// callDone calls the done of every call in list, in order, then clears list so
// that it keeps no error or callback alive.
func callDone(list []doneCall) {
	for i := range list {
		if d := &list[i]; d.cb != nil {
			d.cb(d.seq, d.err)
		}
	}
	clear(list)
}
