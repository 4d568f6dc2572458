// Package conn runs hawk's native connections from accept to close: handshake, reads, ACKs, deadlines, drain.
//
// The read loop decodes frames in place and hands reports to a destination
// (internal/ingest); writes are coalesced; the reaper enforces every
// per-connection deadline; the drain says GOAWAY.
//
// # The path of one report
//
// The connection's reader goroutine reads what the socket has into a pooled buffer,
// decodes every whole frame in place (protocol.Decode) and adds each REPORT to an
// ingest.Batch, which encodes it as a record line. After the read, the batch goes to
// the Destination in one Submit. When the destination has made the batch durable it
// calls the connection's Committed from its own goroutine, which queues one ACK per
// report (or a retryable NACK per report when the batch failed) on the connection's
// pending output. A flusher goroutine, started when output is queued and gone when
// none is left, writes everything pending in one write.
//
// # Flow control
//
// A client may have limits.max_in_flight REPORTs unanswered (announced in WELCOME);
// the reader counts the reports it read against those Committed answered and closes
// the connection with ERROR too_many_in_flight at the one beyond. Output is never
// refused for its size: past maxPendingOut the reader stops reading until the
// flusher has written it down, so TCP pushes back on a client that does not read.
// Only a connection whose writes make no progress for limits.write_timeout is closed
// (slow_consumer), and one whose started frame stays incomplete past
// limits.frame_timeout (frame_timeout); the reaper enforces both.
//
// # Goroutines
//
// Per connection: its reader (parked on a channel while output drains, never
// polling), and a flusher only while output is pending. Per
// Manager: the reaper (started by New, stopped by Close) and whoever calls Serve and
// Drain. Nothing else.
package conn
