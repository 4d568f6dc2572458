package ingest

import (
	"errors"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Destination is where reports go to become durable: the local spool, or a broker.
type Destination interface {
	// Submit hands b to the destination, which copies what it needs: the caller may
	// reuse b as soon as Submit returns. w.Committed is called exactly once for the
	// call, once the batch is durable or has failed: from the destination's
	// goroutine, or on the caller's before Submit returns (the spool's caller may
	// do the write itself), so the caller holds no lock Committed takes.
	// Submit may block while the destination is full (that is how a slow disk or
	// broker pushes back on the agents: their connections stop being read); it then
	// calls SubmitWaits(w) first.
	Submit(b *Batch, w Waiter)
}

// Waiter learns the outcome of one Submit.
type Waiter interface {
	// Committed reports that the reports with these seqs are durable (err == nil) or
	// are not (err != nil: the agent must send them again). seqs belongs to the
	// destination and is valid only during the call; Committed must not block for long.
	Committed(seqs []uint64, err error)
}

// SubmitWaiter is a Waiter that hears, on the submitting goroutine, when its Submit
// is about to block for room in the destination, which lasts as long as the
// destination is slow. A connection's reader holds its output during a Submit, to
// write the ACKs of its own read after it; it lets that hold go here, so that the ACKs
// of its earlier reports, committed while it waits, are written meanwhile.
type SubmitWaiter interface {
	Waiter
	SubmitWaits()
}

// SubmitWaits tells w that its Submit is about to block, if w wants to know
// (SubmitWaiter). A destination calls it without holding any lock of its own.
func SubmitWaits(w Waiter) {
	if sw, ok := w.(SubmitWaiter); ok {
		sw.SubmitWaits()
	}
}

// ErrClosed is the error a Waiter gets for a batch submitted after the destination
// was closed: the server is shutting down.
var ErrClosed = errors.New("destination closed")

// DestinationError is the error a broker destination gives its Waiters when the
// broker did not confirm a batch (unreachable, publish timed out): the agent is told
// destination_unavailable and to resend after RetryAfter.
type DestinationError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *DestinationError) Error() string { return "destination unavailable: " + e.Err.Error() }
func (e *DestinationError) Unwrap() error { return e.Err }

// FullError is the error a destination gives its Waiters when it refuses a batch
// for want of room it may make (the spool at a hard spool.max_bytes, its oldest
// segments not yet forwarded): the agent is told spool_write_failed, retryable,
// and to resend after RetryAfter.
type FullError struct {
	Err        error
	RetryAfter time.Duration
}

func (e *FullError) Error() string { return e.Err.Error() }
func (e *FullError) Unwrap() error { return e.Err }

// Nack is how a connection answers reports whose batch failed: every failure is
// retryable (the report was not stored, so sending it again cannot duplicate it), and
// the code tells an agent whether to resend here (spool_write) or on a new
// connection (unavailable: this server is going away), or that the broker did not
// confirm (destination_unavailable, with a retry hint). A full spool is a
// spool_write_failed with a retry hint.
func Nack(err error) *protocol.Nack {
	if de := (*DestinationError)(nil); errors.As(err, &de) {
		return &protocol.Nack{Code: protocol.CodeDestinationUnavailable, Message: de.Error(), Retryable: true,
			RetryAfterMS: de.RetryAfter.Milliseconds()}
	}
	if fe := (*FullError)(nil); errors.As(err, &fe) {
		return &protocol.Nack{Code: protocol.CodeSpoolWrite, Message: fe.Error(), Retryable: true,
			RetryAfterMS: fe.RetryAfter.Milliseconds()}
	}
	if errors.Is(err, ErrClosed) {
		return &protocol.Nack{Code: protocol.CodeUnavailable, Message: "server is shutting down; resend on a new connection", Retryable: true}
	}
	return &protocol.Nack{Code: protocol.CodeSpoolWrite, Message: err.Error(), Retryable: true}
}
