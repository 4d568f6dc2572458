package udp

import (
	"net/netip"
	"time"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// The report format (PROTOCOL.md 4.4): a datagram is a compact header naming the
// client and its token, then one REPORT frame. The credential must cover the
// client id, exactly as for a HELLO; the report goes through the client's dedup
// window, shared with its connections, so that a sender retransmitting until it
// is ACKed gets it stored once. The ACK (a 20-byte ACK frame) goes out once the
// report is durable, or at once for a copy already durable; a refused datagram is
// counted and never answered: its source may be forged.

// Credentials gives the credentials in force and auth.open (a reload changes them).
type Credentials func() (*auth.Set, bool)

// handleReport takes one report datagram that passed handle's checks (allow,
// size, pending bound).
func (l *Listener) handleReport(d []byte, from netip.AddrPort, ip netip.Addr) {
	g, err := protocol.DecodeDatagram(d)
	if err != nil {
		reason := RefusedMalformed
		if err == protocol.ErrDatagramBadCRC {
			reason = RefusedBadCRC
		}
		l.o.Observer.Refused(reason)
		return
	}
	var set *auth.Set
	open := false
	if l.o.Credentials != nil {
		set, open = l.o.Credentials()
	}
	// A client the table remembers is attached before its token is checked, so
	// that its id is the table's string: a report datagram then allocates nothing.
	var dd *dedup.Client
	if l.o.Dedup != nil {
		dd = l.o.Dedup.AttachKnownBytes(g.ClientID)
	}
	var id string
	if dd != nil {
		id = dd.ID()
	} else {
		id = string(g.ClientID)
	}
	if v := set.CheckBytes(g.Token, id, auth.Peer{Addr: ip, Open: open}); v.Reason != auth.OK {
		if dd != nil {
			l.o.Dedup.Detach(dd)
		}
		l.o.Observer.Refused(string(v.Reason))
		return
	}
	seq := g.Report.Seq
	if l.o.Dedup != nil {
		if dd == nil {
			dd = l.o.Dedup.Attach(id)
		}
		w := l.spare
		if w == nil {
			w = &ackWaiter{l: l}
			l.spare = w
		}
		w.to = from
		switch dd.Check(seq, w) {
		case dedup.Durable:
			l.o.Dedup.Detach(dd)
			l.sendAck(w.buf[:0], from, seq)
			return
		case dedup.Pending: // answered with the first copy's outcome
			l.spare = nil // the window keeps w until then
			l.o.Dedup.Detach(dd)
			return
		}
	}
	l.mu.Lock()
	b := l.cur
	b.b.Add(&ingest.Record{ClientID: id, Seq: seq, Received: time.Now(), Payload: g.Report.Payload,
		Listener: l.o.Name, Format: l.o.Format, Source: netip.AddrPortFrom(ip, from.Port())})
	b.replies = append(b.replies, reply{to: from, seq: seq, dd: dd})
	l.pending.Add(1)
	l.mu.Unlock()
	l.wakeSubmitter()
}

// sendAck answers a durable report with its ACK, if its source is still allowed.
// buf (empty, room for protocol.Overhead bytes) belongs to the caller's goroutine:
// a buffer of sendAck's own would escape to the heap at every ACK.
func (l *Listener) sendAck(buf []byte, to netip.AddrPort, seq uint64) {
	if !l.settings.Load().allowed(to.Addr().Unmap()) {
		return
	}
	if _, err := l.o.Conn.WriteToUDPAddrPort(protocol.AppendFrame(buf, protocol.TypeAck, seq, nil), to); err == nil {
		l.o.Observer.Replied()
	}
}

// committedReports tells each stored report's window its outcome and ACKs what
// is durable; a failure is not answered (the sender retransmits).
func (b *batch) committedReports(err error) {
	l := b.l
	for _, r := range b.replies {
		if r.dd != nil {
			one := [1]uint64{r.seq}
			r.dd.Committed(one[:], err)
			l.o.Dedup.Detach(r.dd)
		}
		if err == nil {
			l.sendAck(b.ack[:0], r.to, r.seq)
		}
	}
}

// ackWaiter answers a retransmitted report whose first copy was pending. The
// reader reuses one (Listener.spare) until a window keeps it, so only such a
// retransmit costs an allocation.
type ackWaiter struct {
	l   *Listener
	to  netip.AddrPort
	buf [protocol.Overhead]byte
}

func (w *ackWaiter) Answer(seq uint64, err error) {
	if err == nil {
		w.l.sendAck(w.buf[:0], w.to, seq)
	}
}
