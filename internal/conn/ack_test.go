package conn

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// helloRange completes a handshake asking for range acknowledgements.
func helloRange(t *testing.T, p *testutil.Peer, id string) {
	t.Helper()
	if w := p.HelloWith(protocol.Hello{ClientID: id, Ack: protocol.AckModeRange}); w.Ack != protocol.AckModeRange {
		t.Fatalf("WELCOME ack = %q, want %q", w.Ack, protocol.AckModeRange)
	}
}

// expectAcks reads frames until every seq is acknowledged: by ACK_RANGE frames only
// when ranges is true, by ACK frames only otherwise. Any other frame, or a range
// covering a seq not in seqs, fails. It returns how many frames it read.
func expectAcks(t *testing.T, p *testutil.Peer, ranges bool, seqs ...uint64) int {
	t.Helper()
	left := map[uint64]bool{}
	for _, s := range seqs {
		left[s] = true
	}
	frames := 0
	for len(left) > 0 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for the ACKs of %d seqs: %v", len(left), err)
		}
		frames++
		switch {
		case !ranges && f.Type == protocol.TypeAck:
			if !left[f.Seq] {
				t.Fatalf("ACK for seq %d, not one of those left", f.Seq)
			}
			delete(left, f.Seq)
		case ranges && f.Type == protocol.TypeAckRange:
			r, err := protocol.ParseAckRanges(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			for i := range r.Len() {
				first, last := r.At(i)
				for s := first; s <= last; s++ {
					if !left[s] {
						t.Fatalf("ACK_RANGE %d..%d covers seq %d, not one of those left", first, last, s)
					}
					delete(left, s)
				}
			}
		default:
			t.Fatalf("got %s seq %d, want %s", f.Type, f.Seq, map[bool]protocol.Type{false: protocol.TypeAck, true: protocol.TypeAckRange}[ranges])
		}
	}
	return frames
}

func seqRange(first, last uint64) []uint64 {
	var s []uint64
	for q := first; q <= last; q++ {
		s = append(s, q)
	}
	return s
}

// A connection that asks for ranges gets every report acknowledged in far fewer
// frames; one that does not keeps one ACK per report.
func TestAckRangeNegotiated(t *testing.T) {
	ts := startServer(t, testSettings())
	hold := make(chan struct{})
	ts.sp.mu.Lock()
	ts.sp.hold = hold // the commits of several reads then answer before one write
	ts.sp.mu.Unlock()

	p := testutil.Dial(t, ts.addr)
	helloRange(t, p, "ranged")
	plain := testutil.Dial(t, ts.addr)
	if w := plain.Hello("plain", ""); w.Ack != "" {
		t.Fatalf("WELCOME ack = %q to a HELLO that did not ask", w.Ack)
	}
	for i := range 4 {
		sendReports(p, seqRange(uint64(100*i+1), uint64(100*i+100))...)
		sendReports(plain, seqRange(uint64(100*i+1), uint64(100*i+100))...)
	}
	waitFor(t, "800 reports submitted", func() bool { return ts.spoolLines() == 800 })
	close(hold)
	if n := expectAcks(t, p, true, seqRange(1, 400)...); n > 8 {
		t.Fatalf("400 consecutive reports acknowledged in %d ACK_RANGE frames, want a few", n)
	}
	expectAcks(t, plain, false, seqRange(1, 400)...)
}

// splitDest commits each batch in two: the seqs in fail are NACKed, the rest ACKed.
type splitDest struct {
	fail map[uint64]bool
}

func (d *splitDest) Submit(b *ingest.Batch, w ingest.Waiter) {
	var good, bad []uint64
	for _, s := range b.Seqs() {
		if d.fail[s] {
			bad = append(bad, s)
		} else {
			good = append(good, s)
		}
	}
	w.Committed(good, nil)
	w.Committed(bad, errors.New("disk full"))
}

// A NACKed seq between durable ones is a gap between two ranges, never inside one,
// and gets its own NACK.
func TestAckRangeLeavesNackedSeqsOut(t *testing.T) {
	ts := startServer(t, testSettings(), func(o *Options) {
		o.Destination = &splitDest{fail: map[uint64]bool{5: true, 9: true}}
	})
	p := testutil.Dial(t, ts.addr)
	helloRange(t, p, "gappy")
	sendReports(p, seqRange(1, 12)...)
	left := map[uint64]bool{}
	for _, s := range seqRange(1, 12) {
		left[s] = true
	}
	for len(left) > 0 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case protocol.TypeNack:
			if f.Seq != 5 && f.Seq != 9 {
				t.Fatalf("NACK for %d", f.Seq)
			}
			delete(left, f.Seq)
		case protocol.TypeAckRange:
			r, _ := protocol.ParseAckRanges(f.Payload)
			for i := range r.Len() {
				first, last := r.At(i)
				for s := first; s <= last; s++ {
					if s == 5 || s == 9 || !left[s] {
						t.Fatalf("ACK_RANGE %d..%d covers %d", first, last, s)
					}
					delete(left, s)
				}
			}
		default:
			t.Fatalf("unexpected %s", f.Type)
		}
	}
}

// The mode is the connection's, for its life: a connection handed to a new
// process keeps it (handoff.State.Ack), whichever mode it has.
func TestHandoffKeepsAckMode(t *testing.T) {
	old := startHandoffServer(t)
	next := startHandoffServer(t)
	peers := map[bool]*testutil.Peer{}
	for _, ranges := range []bool{false, true} {
		p := testutil.Dial(t, old.addr)
		id := fmt.Sprintf("agent-ranges-%v", ranges)
		if ranges {
			helloRange(t, p, id)
		} else {
			p.Hello(id, "")
		}
		sendReports(p, 1, 2, 3)
		expectAcks(t, p, ranges, 1, 2, 3)
		peers[ranges] = p
	}
	moveAll(t, old, next, len(peers))
	for ranges, p := range peers {
		sendReports(p, 4, 5, 6)
		expectAcks(t, p, ranges, 4, 5, 6)
	}
}

// ACK_RANGE frames written in part: the socket takes part of the pending output at
// once and the rest waits for the flusher; a frame partly written is never
// extended, so the client reads well-formed frames covering every seq once.
func TestAckRangeOverAFullSocket(t *testing.T) {
	s := testSettings()
	s.MaxInFlight = 65535
	ts := startServer(t, s)
	p := testutil.DialReadBuffer(t, ts.addr, 4096)
	helloRange(t, p, "ranged-full")
	c := serverConn(t, ts, "ranged-full")
	if err := c.nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	// Every other seq: each range holds one seq, so the answers are large frames.
	var seqs []uint64
	var stream []byte
	for seq := uint64(2); seq <= 40000; seq += 2 {
		seqs = append(seqs, seq)
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("1"))
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Conn.Write(stream)
		wrote <- err
	}()
	expectAcks(t, p, true, seqs...)
	if err := <-wrote; err != nil {
		t.Fatalf("client write: %v", err)
	}
}
