// Package conn runs hawk's connections: the handshake, the read loop that decodes
// frames in place and hands reports to a destination (internal/ingest), coalesced
// writes, the reaper that enforces every per-connection deadline, and the drain that
// says GOAWAY.
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
// # Goroutines
//
// Per connection: its reader, and a flusher only while output is pending. Per
// Manager: the reaper (started by New, stopped by Close) and whoever calls Serve and
// Drain. Nothing else.
package conn
