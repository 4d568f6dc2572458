package udp

import (
	"net"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// newReportRig is a report listener with one credential (token s3cret covers
// agent-*) and a ready dedup table.
func newReportRig(t *testing.T, d *dest) *rig {
	t.Helper()
	table, err := dedup.New(dedup.Options{Window: 1024, MaxClients: 100})
	if err != nil {
		t.Fatal(err)
	}
	table.SetReady()
	set := auth.MustSet("fleet s3cret agent-*")
	return newRig(t, FormatReport, Settings{Allow: loopback, MaxPending: 100}, d, func(o *Options) {
		o.MaxDatagram = 512
		o.Credentials = func() (*auth.Set, bool) { return set, false }
		o.Dedup = table
	})
}

// expectAck reads the next datagram on s: it must be the ACK of seq.
func expectAck(t *testing.T, s *net.UDPConn, seq uint64) {
	t.Helper()
	buf := make([]byte, 100)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := s.Read(buf)
	if err != nil {
		t.Fatalf("waiting for the ACK of %d: %v", seq, err)
	}
	f, m, err := protocol.Decode(buf[:n], 0)
	if err != nil || m != n || f.Type != protocol.TypeAck || f.Seq != seq {
		t.Fatalf("got % x, want the ACK of %d", buf[:n], seq)
	}
}

func TestReportStoredOnceAndAckedEachTime(t *testing.T) {
	r := newReportRig(t, &dest{})
	s := r.sender(t)
	d := protocol.AppendDatagram(nil, "agent-1", "s3cret", 7, []byte(`{"n":7}`))
	s.Write(d)
	expectAck(t, s, 7)
	s.Write(d) // a retransmit whose ACK was lost
	expectAck(t, s, 7)
	recs := r.d.records(t)
	if len(recs) != 1 || recs[0]["client_id"] != "agent-1" || seqOf(t, recs[0]) != 7 || recs[0]["format"] != "report" || recs[0]["listener"] != "u" {
		t.Fatalf("records %v, want agent-1 seq 7 once", recs)
	}
	if got, want := recs[0]["source"], s.LocalAddr().String(); got != want {
		t.Errorf("record source %v, want the sender's address %s", got, want)
	}
}

func TestReportRetransmitWhilePendingAckedOnce(t *testing.T) {
	d := &dest{hold: make(chan struct{})}
	r := newReportRig(t, d)
	s := r.sender(t)
	dg := protocol.AppendDatagram(nil, "agent-1", "s3cret", 9, []byte("x"))
	s.Write(dg)
	s.Write(dg) // the first copy is not durable yet: the second waits for it
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.read }) == 2 }, "both read")
	close(d.hold)
	expectAck(t, s, 9)
	expectAck(t, s, 9)
	if recs := r.d.records(t); len(recs) != 1 {
		t.Fatalf("stored %d copies", len(recs))
	}
}

func TestReportRefusedByReasonAndNeverAnswered(t *testing.T) {
	r := newReportRig(t, &dest{})
	s := r.sender(t)
	bad := protocol.AppendDatagram(nil, "agent-1", "s3cret", 1, []byte("x"))
	bad[len(bad)-1] ^= 1
	for _, d := range [][]byte{
		[]byte("not a report"),
		bad,
		protocol.AppendDatagram(nil, "agent-1", "wrong", 2, []byte("x")),
		protocol.AppendDatagram(nil, "other-1", "s3cret", 3, []byte("x")),
	} {
		s.Write(d)
	}
	// Answers go out in the order of the datagrams: the first one read is the ACK
	// of the good report sent last, so none of the refused was answered.
	s.Write(protocol.AppendDatagram(nil, "agent-1", "s3cret", 4, []byte("x")))
	expectAck(t, s, 4)
	// The ACK goes out before the batch is counted stored.
	testutil.Eventually(t, 5*time.Second, func() bool { return r.c.get(func() int { return r.c.stored }) == 1 }, "1 stored")
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	want := map[string]int{RefusedMalformed: 1, RefusedBadCRC: 1, RefusedUnknownToken: 1, RefusedNotCovered: 1}
	for k, v := range want {
		if r.c.refused[k] != v {
			t.Errorf("refused %v, want %v", r.c.refused, want)
		}
	}
}

func TestReportOpenServerServesLoopbackOnly(t *testing.T) {
	r := newRig(t, FormatReport, Settings{Allow: loopback, MaxPending: 100}, &dest{}, func(o *Options) { o.MaxDatagram = 512 })
	s := r.sender(t)
	s.Write(protocol.AppendDatagram(nil, "any", "", 1, []byte("x")))
	expectAck(t, s, 1)
}
