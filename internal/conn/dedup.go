package conn

import (
	"github.com/hawk-agents/hawk/internal/dedup"
)

// The glue between a connection and its client's dedup window (internal/dedup):
// looked up once at the handshake, asked once per REPORT, told once per commit.

// attachDedup holds the client's window if the table remembers the client; at the
// handshake, on the reader. A client it does not remember gets one at its first
// report (storeReport): an agent that only heartbeats costs no window.
func (c *Conn) attachDedup() {
	if c.m.dedup != nil {
		c.dd = c.m.dedup.AttachKnown(c.clientID)
	}
}

// dedupWindow is the client's window for a handoff: the one held, or the table's
// if another connection of the client made one; nil if there is none.
func (c *Conn) dedupWindow() *dedup.Client {
	if c.dd == nil && c.m.dedup != nil {
		return c.m.dedup.Lookup(c.clientID)
	}
	return c.dd
}

// detachDedup gives the window back; at teardown, on the reader.
func (c *Conn) detachDedup() {
	if c.dd != nil {
		c.m.dedup.Detach(c.dd)
	}
}

// releaseDedup lets the window give back its pending bitmap if nothing is pending:
// on a heartbeat that came without reports, so an idle agent does not hold it and
// an active one allocates it again at most once per heartbeat, never per report.
func (c *Conn) releaseDedup() {
	if c.dd != nil {
		c.dd.Release()
	}
}

// storeReport reports whether a REPORT with this seq goes to the destination. A
// duplicate already durable is ACKed at once; one still pending is answered with
// the first copy's outcome (Answer).
func (c *Conn) storeReport(seq uint64) bool {
	if c.dd == nil {
		if c.m.dedup == nil {
			return true
		}
		c.dd = c.m.dedup.Attach(c.clientID) // once, at the connection's first report
	}
	switch c.dd.Check(seq, c) {
	case dedup.Durable:
		c.Answer(seq, nil)
		return false
	case dedup.Pending:
		return false
	}
	return true
}

// committedDedup records a commit of this connection's reports in the window.
func (c *Conn) committedDedup(seqs []uint64, err error) {
	if c.dd != nil {
		c.dd.Committed(seqs, err)
	}
}

// Answer implements dedup.Waiter: one ACK (or retryable NACK) for a duplicate
// report that was not stored.
func (c *Conn) Answer(seq uint64, err error) {
	c.wmu.Lock()
	c.answered.Add(1) // under wmu, with the queuing, as in Committed
	out := c.outLocked()
	if out == nil {
		c.wmu.Unlock()
		return
	}
	one := [1]uint64{seq}
	if err == nil {
		c.acksLocked(out, one[:])
	} else {
		c.nacksLocked(out, one[:], err)
	}
	c.wmu.Unlock()
	if err == nil {
		c.m.obs.Acked(1)
	} else {
		c.m.obs.Nacked(1)
	}
}
