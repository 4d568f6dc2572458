package spool

import "time"

// ackJob is a written batch for the acker: its Waiters are told err.
type ackJob struct {
	b   batch
	err error
}

// ack is the acker: it tells the Waiters of each batch the committer hands it, in
// the order written, and gives the batch back emptied.
func (s *Spool) ack() {
	defer close(s.acked)
	for j := range s.ackq {
		s.tell(&j.b, j.err)
		j.b.reset()
		s.freed <- j.b
	}
}

// ackerIdle waits until the acker is done with the batch it holds, if any, and
// takes that batch back as a spare. Committer only.
func (s *Spool) ackerIdle() {
	if s.acking {
		s.spares = append(s.spares, <-s.freed)
		s.acking = false
	}
}

// tell calls each Waiter of b with its seqs and err.
func (s *Spool) tell(b *batch, err error) {
	var now time.Time
	if s.obs != nil && err == nil {
		now = time.Now()
	}
	for _, e := range b.entries {
		// The full slice expression keeps a Waiter's append from writing into
		// the next Waiter's seqs.
		if !now.IsZero() {
			s.obs.AckLatency(now.Sub(e.at), e.end-e.start)
		}
		e.w.Committed(b.seqs[e.start:e.end:e.end], err)
	}
}
