package conn

import (
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// acksLocked queues the ACKs of durable seqs: one ACK frame per report, or, on a
// connection whose HELLO asked for range acknowledgements, ACK_RANGE frames that
// gather every answer queued before the flusher's next write (PROTOCOL.md 4.5).
// Only the seqs given are covered, so a NACKed or still pending seq between two
// durable ones is a gap between ranges, never inside one. Caller holds wmu; out is
// what outLocked returned.
func (c *Conn) acksLocked(out *[]byte, seqs []uint64) {
	if !c.ackRange {
		b := *out
		for _, s := range seqs {
			b = protocol.AppendFrame(b, protocol.TypeAck, s, nil)
		}
		*out = b
		c.queuedLocked(protocol.TypeAck, len(seqs))
		return
	}
	b, at, frames := protocol.AppendAckRanges(*out, int(c.ackAt), seqs)
	*out, c.ackAt = b, int32(at)
	c.queuedLocked(protocol.TypeAckRange, frames)
}

// nacksLocked queues one NACK per seq, whatever the acknowledgement mode, saying
// why err refused them. Caller holds wmu; out is what outLocked returned.
func (c *Conn) nacksLocked(out *[]byte, seqs []uint64, err error) {
	b := *out
	nack := ingest.Nack(err)
	for _, s := range seqs {
		b = protocol.AppendJSON(b, protocol.TypeNack, s, nack)
	}
	*out = b
	c.queuedLocked(protocol.TypeNack, len(seqs))
}

// ackMode is the acknowledgement mode WELCOME announces: the HELLO's `ack` when
// this server knows it, empty (one ACK per report) otherwise.
func (c *Conn) ackMode() string {
	if c.ackRange {
		return protocol.AckModeRange
	}
	return ""
}
