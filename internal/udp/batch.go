package udp

import (
	"net/netip"
	"strconv"
	"sync"

	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// reply is a receipt owed to the sender of one stored datagram.
type reply struct {
	to   netip.AddrPort
	seq  uint64
	size int           // the datagram's: the receipt is never larger
	dd   *dedup.Client // a report's window, held until its commit (nil without dedup)
}

// batch is the datagrams read since the last Submit, and the Waiter of that Submit.
type batch struct {
	l       *Listener
	b       ingest.Batch
	replies []reply
	scratch []byte // the payload being parsed
	id      []byte // the client_id being formatted
	ack     [protocol.Overhead]byte
}

var batches = sync.Pool{New: func() any { return new(batch) }}

func newBatch(l *Listener) *batch {
	b := batches.Get().(*batch)
	b.l = l
	return b
}

// Committed is the destination's answer for the batch: receipts for what is
// durable (only to sources still allowed), counts either way.
func (b *batch) Committed(seqs []uint64, err error) {
	l := b.l
	n := len(seqs)
	if l.o.Format == FormatReport {
		b.committedReports(err)
	}
	if err != nil {
		for range n {
			l.o.Observer.Refused(RefusedNotStored)
		}
	} else {
		l.o.Observer.Stored(n)
		if l.o.Format != FormatReport {
			b.sendReplies()
		}
	}
	l.pending.Add(-int64(n))
	b.b.Reset()
	b.replies = b.replies[:0]
	b.l = nil
	batches.Put(b)
	l.inflight.Done()
}

// Receipt is the answer to a stored datagram: "ok <seq>", cut to the datagram's
// size so that a reply never amplifies.
func Receipt(dst []byte, seq uint64, size int) []byte {
	dst = append(dst, "ok "...)
	dst = strconv.AppendUint(dst, seq, 10)
	return dst[:min(len(dst), size)]
}

func (b *batch) sendReplies() {
	if len(b.replies) == 0 {
		return
	}
	l := b.l
	s := l.settings.Load()
	var buf [32]byte
	for _, r := range b.replies {
		if !s.allowed(r.to.Addr().Unmap()) {
			continue
		}
		if _, err := l.o.Conn.WriteToUDPAddrPort(Receipt(buf[:0], r.seq, r.size), r.to); err == nil {
			l.o.Observer.Replied()
		}
	}
}
