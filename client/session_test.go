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
	frames := readFramesMax(c, n, 1<<10)
	if len(frames) < n {
		t.Fatalf("read %d frames, want %d", len(frames), n)
	}
	return frames
}

// tcpPair is a connected pair of loopback TCP sockets: the client's side and the
// server's. Both are closed when the test ends.
func tcpPair(t testing.TB) (cli, srv net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	srv, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return cli, srv
}

// waitRelease waits for a release running in the background, or fails the test.
func waitRelease(t *testing.T, released <-chan struct{}) {
	t.Helper()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("release is still waiting")
	}
}

// The reports queued while the session is held (by done callbacks) are written by
// release itself when nothing else is being written: with no writer goroutine
// running at all, they reach the server, in order, and the writer is not woken.
func TestSessionReleaseWritesHeldBatch(t *testing.T) {
	cli, srv := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.hold()
	for seq := uint64(1); seq <= 3; seq++ {
		s.queueFrame(protocol.TypeReport, seq, []byte("r"))
	}
	s.release(nil)
	for i, f := range readFrames(t, srv, 3) {
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

// A batch larger than the socket takes while the server reads nothing: release
// does not wait; the rest stays queued, first, and the writer is woken for it.
// Once the server reads, every frame arrives once and in order.
func TestSessionReleaseLeavesWhatTheSocketDoesNotTakeToWriter(t *testing.T) {
	cli, srv := tcpPair(t)
	var wg sync.WaitGroup
	s := newSession(&recordingOwner{}, &wg, cli)
	// Small socket buffers, so that half the frames (4 MiB) are far more than the
	// socket takes whatever the system's defaults.
	cli.(*net.TCPConn).SetWriteBuffer(64 << 10)
	srv.(*net.TCPConn).SetReadBuffer(64 << 10)
	const frames = 2000
	payload := make([]byte, 4<<10)
	s.hold()
	for seq := uint64(1); seq <= frames/2; seq++ {
		s.queueFrame(protocol.TypeReport, seq, payload)
	}
	released := make(chan struct{})
	go func() { defer close(released); s.release(nil) }()
	waitRelease(t, released)
	if len(s.out) == 0 {
		t.Fatal("the socket took 4 MiB nobody reads")
	}
	select {
	case <-s.kick:
	default:
		t.Fatal("release left output queued without waking the writer")
	}
	s.kick <- struct{}{} // give the writer its kick back
	for seq := uint64(frames/2 + 1); seq <= frames; seq++ {
		s.queueFrame(protocol.TypeReport, seq, payload) // behind the rest
	}
	wg.Add(1)
	go s.writeLoop()
	defer func() { s.fail(errors.New("test over")); wg.Wait() }()
	got := make(chan []protocol.Frame, 1)
	go func() { got <- readFramesMax(srv, frames, len(payload)+64) }()
	fs := <-got
	if len(fs) != frames {
		t.Fatalf("read %d frames, want %d", len(fs), frames)
	}
	for i, f := range fs {
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
	}
}

// readFramesMax reads n frames of at most max bytes of payload from c, or as many
// as arrive within 10 s; of each it keeps the type and the seq.
func readFramesMax(c net.Conn, n, max int) []protocol.Frame {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	var frames []protocol.Frame
	buf := make([]byte, 64<<10)
	for len(frames) < n {
		k, err := c.Read(buf)
		if err != nil {
			return frames
		}
		got = append(got, buf[:k]...)
		for {
			f, m, err := protocol.Decode(got, max)
			if err != nil || m == 0 {
				break
			}
			frames = append(frames, protocol.Frame{Type: f.Type, Seq: f.Seq})
			got = got[m:]
		}
	}
	return frames
}

// An upload chunk queued and not yet written leaves the held batch to the writer,
// which keeps chunks and reports in the order it takes them: release only wakes it.
func TestSessionReleaseLeavesBatchToWriterWhileChunkPending(t *testing.T) {
	cli, _ := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.queueChunk("u1", 0, []byte("data"))
	<-s.kick // the chunk's own kick, as the writer would take it
	releaseLeavesBatch(t, s, "a chunk waits")
}

// releaseLeavesBatch holds s, queues a REPORT and releases, and fails unless
// release left the batch queued and woke the writer (because of why).
func releaseLeavesBatch(t *testing.T, s *session, why string) {
	t.Helper()
	s.hold()
	s.queueFrame(protocol.TypeReport, 1, []byte("r"))
	s.release(nil)
	select {
	case <-s.kick:
	default:
		t.Fatal("release neither wrote the batch nor woke the writer")
	}
	if len(s.out) == 0 {
		t.Fatalf("release took the batch although %s", why)
	}
}

// While a write of the writer's is in progress, release leaves its batch queued
// behind it and wakes the writer, which sends it next.
func TestSessionReleaseLeavesBatchBehindWriterInProgress(t *testing.T) {
	cli, srv := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.writing.Store(true) // as the writer sets it, under wmu, taking out
	releaseLeavesBatch(t, s, "another write was in progress")
	s.writing.Store(false)
	runWriter(t, s)
	if f := readFrames(t, srv, 1)[0]; f.Type != protocol.TypeReport || f.Seq != 1 {
		t.Fatalf("got %s %d", f.Type, f.Seq)
	}
}

// framesOf appends the REPORT frames of seqs to dst.
func framesOf(dst []byte, seqs ...uint64) []byte {
	for _, seq := range seqs {
		dst = protocol.AppendFrame(dst, protocol.TypeReport, seq, []byte("r"))
	}
	return dst
}

// The batch the owner collected is written by release itself, behind what was
// queued on the session before it (a PONG, here a REPORT), in that order, and
// release hands back an empty buffer for the next batch.
func TestSessionReleaseWritesBatchBehindQueued(t *testing.T) {
	cli, srv := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.hold()
	s.queueFrame(protocol.TypeReport, 1, []byte("r"))
	spare := s.release(framesOf(nil, 2, 3))
	for i, f := range readFrames(t, srv, 3) {
		if f.Type != protocol.TypeReport || f.Seq != uint64(i+1) {
			t.Fatalf("frame %d: %s %d", i, f.Type, f.Seq)
		}
	}
	if len(spare) != 0 || cap(spare) == 0 {
		t.Fatalf("release returned a buffer of len %d cap %d, want an empty reusable one", len(spare), cap(spare))
	}
	select {
	case <-s.kick:
		t.Fatal("release woke the writer for a batch it wrote itself")
	default:
	}
	// Nothing queued before it: the batch is written from its own buffer, which
	// comes back for the next one.
	s.hold()
	batch := framesOf(spare, 4)
	spare = s.release(batch)
	if f := readFrames(t, srv, 1)[0]; f.Seq != 4 {
		t.Fatalf("got seq %d, want 4", f.Seq)
	}
	if &spare[:1][0] != &batch[0] {
		t.Fatal("the batch's buffer did not come back for the next batch")
	}
	if s.writing.Load() || len(s.out) != 0 {
		t.Fatalf("after release: writing %v, %d bytes still queued", s.writing.Load(), len(s.out))
	}
}

// While another write is in progress, release queues the batch behind the output
// already queued and wakes the writer, which writes both in order.
func TestSessionReleaseQueuesBatchBehindWriterInProgress(t *testing.T) {
	cli, srv := tcpPair(t)
	s := newSession(&recordingOwner{}, &sync.WaitGroup{}, cli)
	s.writing.Store(true)
	s.hold()
	s.queueFrame(protocol.TypeReport, 1, []byte("r"))
	s.release(framesOf(nil, 2))
	select {
	case <-s.kick:
	default:
		t.Fatal("release neither wrote the batch nor woke the writer")
	}
	s.writing.Store(false)
	runWriter(t, s)
	for i, f := range readFrames(t, srv, 2) {
		if f.Seq != uint64(i+1) {
			t.Fatalf("frame %d has seq %d", i, f.Seq)
		}
	}
}

// runWriter starts s's writer as the session does, woken once; it stops, and is
// waited for, when the test ends.
func runWriter(t *testing.T, s *session) {
	var wg sync.WaitGroup
	s.wg = &wg
	wg.Add(1)
	s.kick <- struct{}{}
	go s.writeLoop()
	t.Cleanup(func() { s.fail(errors.New("test over")); wg.Wait() })
}
