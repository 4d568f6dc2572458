package client

import (
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// recordingOwner is a sessionOwner that only records what its session reports.
type recordingOwner struct {
	mu      sync.Mutex
	evs     []sessionEvent
	batches int
	ended   chan *session
}

func (o *recordingOwner) sessionEvents(s *session, evs []sessionEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.batches++
	o.evs = append(o.evs, evs...) // copies: evs is reused after the call
}

func (o *recordingOwner) sessionEnded(s *session) { o.ended <- s }

// TestSessionReportsEvents drives a session without a Client: ACKs, NACKs and
// GOAWAYs reach the owner as events, in order, one batch per read; PINGs are
// answered by the session itself; an ERROR ends it and the owner hears of it once.
func TestSessionReportsEvents(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	owner := &recordingOwner{ended: make(chan *session, 1)}
	var wg sync.WaitGroup
	s := newSession(owner, &wg, cli)
	wg.Add(2)
	go s.readLoop()
	go s.writeLoop()

	var burst []byte
	burst = protocol.AppendFrame(burst, protocol.TypeAck, 1, nil)
	burst = protocol.AppendJSON(burst, protocol.TypeNack, 2, &protocol.Nack{Code: protocol.CodeSpoolWrite, Message: "disk", Retryable: true})
	burst = protocol.AppendFrame(burst, protocol.TypePing, 9, nil)
	burst = protocol.AppendJSON(burst, protocol.TypeGoaway, 0, &protocol.Goaway{Reason: "upgrade", DeadlineMS: 500})
	burst = protocol.AppendFrame(burst, protocol.TypeAck, 3, nil)
	if _, err := srv.Write(burst); err != nil {
		t.Fatal(err)
	}

	// The PING is answered by the session: a PONG with its seq.
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	var got []byte
	var pong protocol.Frame
	for {
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the PONG: %v", err)
		}
		got = append(got, buf[:n]...)
		f, m, err := protocol.Decode(got, 1<<10)
		if err != nil {
			t.Fatal(err)
		}
		if m > 0 {
			pong = f
			break
		}
	}
	if pong.Type != protocol.TypePong || pong.Seq != 9 {
		t.Fatalf("answer to PING 9: %s %d", pong.Type, pong.Seq)
	}

	if _, err := srv.Write(protocol.AppendJSON(nil, protocol.TypeError, 0, &protocol.ErrorPayload{Code: protocol.CodeShutdown, Message: "bye"})); err != nil {
		t.Fatal(err)
	}
	select {
	case ended := <-owner.ended:
		if ended != s {
			t.Fatal("sessionEnded called with another session")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the owner was not told the session ended")
	}
	wg.Wait()
	var ep *protocol.ErrorPayload
	if !errors.As(s.err, &ep) || ep.Code != protocol.CodeShutdown {
		t.Fatalf("session ended with %v, want the server's ERROR", s.err)
	}

	owner.mu.Lock()
	defer owner.mu.Unlock()
	kinds := make([]eventKind, len(owner.evs))
	seqs := make([]uint64, len(owner.evs))
	for i, e := range owner.evs {
		kinds[i], seqs[i] = e.kind, e.seq
	}
	if want := []eventKind{eventAcked, eventNacked, eventGoaway, eventAcked}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if want := []uint64{1, 2, 0, 3}; !slices.Equal(seqs, want) {
		t.Fatalf("event seqs %v, want %v", seqs, want)
	}
	if owner.batches != 1 {
		t.Fatalf("%d batches for one read, want 1", owner.batches)
	}
	if nk := owner.evs[1].nack; nk == nil || nk.Code != protocol.CodeSpoolWrite || !nk.Retryable {
		t.Fatalf("NACK event %+v", nk)
	}
	if g := owner.evs[2]; g.goaway == nil || g.goaway.Reason != "upgrade" || g.goaway.DeadlineMS != 500 || !g.worked {
		t.Fatalf("GOAWAY event %+v: want the reason, the deadline, and worked (an ACK came first)", g)
	}
	// The session never touches the owner's bookkeeping on it.
	if s.goaway || s.goawayEnd != 0 || s.inflight != 0 {
		t.Fatal("the session changed the owner's bookkeeping")
	}
}

// readFrames reads from c until it has n whole frames, or fails the test.
func readFrames(t *testing.T, c net.Conn, n int) []protocol.Frame {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	var frames []protocol.Frame
	buf := make([]byte, 512)
	for len(frames) < n {
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(frames), err)
		}
		got = append(got, buf[:k]...)
		for {
			f, m, err := protocol.Decode(got, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			if m == 0 {
				break
			}
			f.Payload = slices.Clone(f.Payload)
			frames = append(frames, f)
			got = got[m:]
		}
	}
	return frames
}

// The reports queued while the session is held (by done callbacks) are written by
// release itself when nothing else is being written: with no writer goroutine
// running at all, they still reach the server, in order, by the time release
// returns, and the writer is not woken for them.
func TestSessionReleaseWritesHeldBatch(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.hold()
	for seq := uint64(1); seq <= 3; seq++ {
		s.queueFrame(protocol.TypeReport, seq, []byte("r"))
	}
	released := make(chan struct{})
	go func() { defer close(released); s.release() }()
	frames := readFrames(t, srv, 3)
	<-released // net.Pipe: its Write returned once srv had read every byte
	for i, f := range frames {
		if f.Type != protocol.TypeReport || f.Seq != uint64(i+1) {
			t.Fatalf("frame %d: %s %d", i, f.Type, f.Seq)
		}
	}
	select {
	case <-s.kick:
		t.Fatal("release woke the writer for a batch it wrote itself")
	default:
	}
	if s.writing.Load() || len(s.out) != 0 {
		t.Fatalf("after release: writing %v, %d bytes still queued", s.writing.Load(), len(s.out))
	}
}

// An upload chunk queued and not yet written leaves the held batch to the writer,
// which keeps chunks and reports in the order it takes them: release only wakes it.
func TestSessionReleaseLeavesBatchToWriterWhileChunkPending(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.queueChunk("u1", 0, []byte("data"))
	<-s.kick // the chunk's own kick, as the writer would take it
	s.hold()
	s.queueFrame(protocol.TypeReport, 1, []byte("r"))
	s.release() // would block on net.Pipe if it wrote: nobody reads srv yet
	select {
	case <-s.kick:
	default:
		t.Fatal("release neither wrote the batch nor woke the writer")
	}
	if len(s.out) == 0 {
		t.Fatal("release took the batch although a chunk waits")
	}
}

// A Write of the reader's batch in progress makes the writer leave output alone;
// the reader wakes it afterwards for whatever was queued meanwhile.
func TestSessionReleaseWakesWriterForOutputQueuedDuringItsWrite(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	var wg sync.WaitGroup
	s := newSession(&recordingOwner{}, &wg, cli)
	wg.Add(1)
	go s.writeLoop()
	defer func() { s.fail(errors.New("test over")); wg.Wait() }()
	s.hold()
	s.queueFrame(protocol.TypeReport, 1, []byte("r"))
	released := make(chan struct{})
	go func() { defer close(released); s.release() }()
	// The reader's write of report 1 blocks on the pipe until srv reads; queue
	// report 2 while it does (writing is set under wmu before the write starts).
	deadline := time.Now().Add(5 * time.Second)
	for !s.writing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("release never started writing")
		}
		time.Sleep(time.Millisecond)
	}
	s.queueFrame(protocol.TypeReport, 2, []byte("r"))
	frames := readFrames(t, srv, 2)
	<-released
	if frames[0].Seq != 1 || frames[1].Seq != 2 {
		t.Fatalf("frames out of order: %d then %d", frames[0].Seq, frames[1].Seq)
	}
}
