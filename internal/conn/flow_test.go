package conn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// serverConn returns the server side of the connection whose client id is id.
func serverConn(t *testing.T, ts *testServer, id string) *Conn {
	t.Helper()
	for _, c := range ts.m.reg.Snapshot(nil) {
		if c.state.Load() == stateActive && c.clientID == id {
			return c
		}
	}
	t.Fatalf("no connection for client id %q", id)
	return nil
}

// spooledSeqs counts the spooled records of each seq.
func spooledSeqs(t *testing.T, ts *testServer) map[uint64]int {
	t.Helper()
	ts.sp.mu.Lock()
	lines := bytes.Split(bytes.TrimSpace(ts.sp.lines), []byte("\n"))
	ts.sp.mu.Unlock()
	got := map[uint64]int{}
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		var rec struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("spool line %q: %v", l, err)
		}
		got[rec.Seq]++
	}
	return got
}

func spooledCount(ts *testServer) int {
	ts.sp.mu.Lock()
	defer ts.sp.mu.Unlock()
	return bytes.Count(ts.sp.lines, []byte("\n"))
}

// A client that writes far more than maxPendingOut of ACKs' worth of reports before
// it reads is pushed back on (its reader stops; TCP holds the client's writes), not
// closed; and it is not taken for silent while the server does not read it. Once it
// reads, it gets every ACK, and every report is persisted exactly once.
func TestNonReadingClientIsPushedBackNotClosed(t *testing.T) {
	// The stream is built before the HELLO: under -race on a busy machine building it
	// takes longer than the heartbeat timeout, which would run out before the first byte.
	const reports = 60000 // 1.2 MB of ACKs, several times maxPendingOut
	var stream []byte
	for seq := uint64(1); seq <= reports; seq++ {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("12345678"))
	}
	s := testSettings()
	s.MaxInFlight = 65535
	s.WriteTimeout = 20 * time.Second // only a write with no progress for this long is cut
	s.HeartbeatTimeout = time.Second  // much shorter than the pause below
	s.FrameTimeout = time.Second
	ts := startServer(t, s)
	p := testutil.DialReadBuffer(t, ts.addr, 4096)
	p.Hello("batcher", "")
	c := serverConn(t, ts, "batcher")
	// A small send buffer on the server side too, so that the ACKs wait in user space.
	if err := c.nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}

	wrote := make(chan error, 1)
	go func() {
		_, err := p.Conn.Write(stream) // blocks once the server stops reading
		wrote <- err
	}()

	testutil.Eventually(t, 10*time.Second, c.paused.Load, "the reader to stop reading")
	// Paused well past the heartbeat timeout, the connection lives.
	testutil.Eventually(t, 10*time.Second, func() bool { return mono.Now()-c.lastSeen.Load() > int64(3*s.HeartbeatTimeout) },
		"the client to look silent for 3 heartbeat timeouts")
	// The stream's frames do not end on read boundaries, so the reader most likely
	// paused holding a partial frame: its frame clock does not run either.
	if got := ts.obs.closed(); len(got) != 0 {
		t.Fatalf("a paused connection was closed: %v", got)
	}
	c.wmu.Lock()
	pending := int(c.writing)
	if c.out != nil {
		pending += len(*c.out)
	}
	c.wmu.Unlock()
	if pending <= maxPendingOut {
		t.Errorf("reader paused with %d bytes pending, bound %d", pending, maxPendingOut)
	}
	// Bounded: past the bound only by the answers to what was in flight when the
	// reader stopped (a few reads' worth here), far from the 1.2 MB of every ACK.
	if pending > 2*maxPendingOut {
		t.Errorf("%d bytes pending, more than %d", pending, 2*maxPendingOut)
	}
	if in := c.framesIn.Load(); in >= reports {
		t.Errorf("the server read %d frames: it did not stop reading", in)
	}
	// From here on the client reads ACKs without sending: give it the time to.
	relaxed := *s
	relaxed.HeartbeatTimeout, relaxed.FrameTimeout = time.Minute, time.Minute
	ts.m.Apply(&relaxed)

	acked := make(map[uint64]bool, reports)
	for len(acked) < reports {
		f := p.Expect(protocol.TypeAck)
		if acked[f.Seq] {
			t.Fatalf("seq %d acked twice", f.Seq)
		}
		acked[f.Seq] = true
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client write: %v", err)
	}
	spooled := spooledSeqs(t, ts)
	if len(spooled) != reports {
		t.Fatalf("%d seqs spooled, want %d", len(spooled), reports)
	}
	for seq, n := range spooled {
		if n != 1 || seq < 1 || seq > reports {
			t.Fatalf("seq %d spooled %d times", seq, n)
		}
	}
	p.Send(protocol.TypePing, 5, nil)
	p.Expect(protocol.TypePong)
	if got := ts.obs.closed(); len(got) != 0 {
		t.Fatalf("connection closed: %v", got)
	}
}

// transport is plaintext (f nil) or TLS, for the tests that must hold over both: a
// TLS connection writes through crypto/tls over its own transport (tlstransport.go).
type transport struct {
	name string
	f    *tlsFixture
}

func overTransports(t *testing.T, test func(t *testing.T, tr transport)) {
	t.Run("plaintext", func(t *testing.T) { test(t, transport{name: "plaintext"}) })
	t.Run("TLS", func(t *testing.T) { test(t, transport{name: "TLS", f: newTLSFixture(t, tlsconf.AuthNone, false)}) })
}

func (tr transport) settings() *Settings {
	if tr.f == nil {
		return testSettings()
	}
	return tlsSettings(tr.f)
}

// dialSlow connects a peer with a 4 KiB receive buffer and says HELLO as id; the
// server's side gets a 4 KiB send buffer. The server's writes then block soon.
func (tr transport) dialSlow(t *testing.T, ts *testServer, id string) *testutil.Peer {
	t.Helper()
	var p *testutil.Peer
	if tr.f == nil {
		p = testutil.DialReadBuffer(t, ts.addr, 4096)
	} else {
		p = testutil.DialTLSReadBuffer(t, ts.addr, 4096, tr.f.clientConfig())
	}
	p.Hello(id, "")
	c := serverConn(t, ts, id)
	nc := c.nc
	if c.isTLS() {
		nc = c.session().t.Conn
	}
	if err := nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	return p
}

// A client that reads, however slowly, is not a slow consumer: the write timeout
// counts from the last write progress, not from the start of a write that takes
// longer than it to drain.
func TestSlowlyReadingClientIsNotCut(t *testing.T) {
	overTransports(t, func(t *testing.T, tr transport) {
		s := tr.settings()
		s.WriteTimeout = 500 * time.Millisecond
		s.HeartbeatTimeout = time.Minute
		ts := startServer(t, s)
		p := tr.dialSlow(t, ts, "sipper")
		const pings = 20000 // 400 KB of PONGs, read at under 200 KB/s: over 2 s, 4 write timeouts
		p.Write(bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), pings))
		var got int
		buf := make([]byte, 1024)
		for got < pings*protocol.HeaderSize+pings*protocol.TrailerSize {
			p.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := p.Conn.Read(buf)
			if err != nil {
				t.Fatalf("after %d bytes of PONGs: %v (closed: %v)", got, err, ts.obs.closed())
			}
			got += n
			time.Sleep(5 * time.Millisecond) // pacing: a slow reader, not a wait
		}
		if c := ts.obs.closed(); len(c) != 0 {
			t.Fatalf("a slowly reading %s client was closed: %v", tr.name, c)
		}
	})
}

// A client that reads nothing is closed once the server's writes have made no
// progress for limits.write_timeout: reason slow_consumer, and the log says the
// write timeout's value.
func TestNeverReadingClientIsASlowConsumer(t *testing.T) {
	overTransports(t, func(t *testing.T, tr transport) {
		s := tr.settings()
		s.WriteTimeout = 300 * time.Millisecond
		s.HeartbeatTimeout = time.Hour
		ts := startServer(t, s)
		p := tr.dialSlow(t, ts, "deaf")
		burst := bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), 4096)
		go func() {
			for {
				if _, err := p.Conn.Write(burst); err != nil {
					return
				}
			}
		}()
		testutil.Eventually(t, 10*time.Second, func() bool { return len(ts.obs.closed()) == 1 }, "the non-reading client to be closed")
		if got := ts.obs.closed(); got[0] != ReasonSlowConsumer {
			t.Fatalf("closed with %v, want slow_consumer", got)
		}
		lines := ts.logs.FilterMessage("closing a connection whose writes made no progress").All()
		if len(lines) != 1 {
			t.Fatalf("%d stall lines logged, want 1", len(lines))
		}
		if f := lines[0].ContextMap(); f["write_timeout"] != s.WriteTimeout || f["reason"] != string(ReasonSlowConsumer) {
			t.Errorf("stall logged with %v, want write_timeout 300ms, reason slow_consumer", f)
		}
		// teardown counts the close before it logs it: wait for the line.
		testutil.Eventually(t, 10*time.Second, func() bool { return ts.logs.FilterMessage("connection closed").Len() == 1 }, "the close to be logged")
		closed := ts.logs.FilterMessage("connection closed").All()
		if len(closed) != 1 || closed[0].ContextMap()["reason"] != string(ReasonSlowConsumer) {
			t.Errorf("close logged as %v", closed)
		}
	})
}

// ERROR slow_consumer can follow only whole frames: frameEnd walks the headers to
// where the frame a cut write was in ends.
func TestFrameEnd(t *testing.T) {
	var out []byte
	out = protocol.AppendFrame(out, protocol.TypeAck, 1, nil)
	out = protocol.AppendJSON(out, protocol.TypeError, 0, &protocol.ErrorPayload{Code: "x"})
	out = protocol.AppendFrame(out, protocol.TypePong, 2, nil)
	first := protocol.HeaderSize + protocol.TrailerSize
	second := first + protocol.Needed(out[first:])
	for _, tc := range []struct{ n, want int }{
		{0, 0}, {1, first}, {first - 1, first}, {first, first}, {first + 16, second},
		{second, second}, {second + 3, len(out)}, {len(out), len(out)},
	} {
		if got := frameEnd(out, tc.n); got != tc.want {
			t.Errorf("frameEnd(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// A slow consumer that starts reading once it has been cut gets the rest of the
// frame the cut write was in, then ERROR slow_consumer, then end-of-stream: the cut
// never leaves a torn frame before an ERROR.
func TestSlowConsumerToldWhenItReadsAgain(t *testing.T) {
	s := testSettings()
	s.WriteTimeout = 300 * time.Millisecond
	s.HeartbeatTimeout = time.Hour
	s.stallErrorGrace = time.Minute // in production 100ms: the client must read at once
	ts := startServer(t, s)
	p := testutil.DialReadBuffer(t, ts.addr, 4096)
	p.Hello("late", "")
	if err := serverConn(t, ts, "late").nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	go p.Conn.Write(bytes.Repeat(protocol.AppendFrame(nil, protocol.TypePing, 1, nil), 20000)) // until the server stops reading
	testutil.Eventually(t, 10*time.Second, func() bool {
		return ts.logs.FilterMessage("closing a connection whose writes made no progress").Len() == 1
	}, "the write to be cut")
	pongs := 0
	for {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d PONGs: %v, want ERROR slow_consumer", pongs, err)
		}
		if f.Type == protocol.TypePong {
			pongs++
			continue
		}
		var e protocol.ErrorPayload
		if f.Type != protocol.TypeError || protocol.ParseJSON(f, &e) != nil || e.Code != protocol.CodeSlowConsumer {
			t.Fatalf("got %s %q after %d PONGs, want ERROR slow_consumer", f.Type, f.Payload, pongs)
		}
		if !strings.Contains(e.Message, "300ms") {
			t.Errorf("message %q does not name the write timeout", e.Message)
		}
		break
	}
	p.ExpectClosed()
	// Wait for the log line, not the count: teardown counts the close before it logs it.
	testutil.Eventually(t, 5*time.Second, func() bool { return ts.logs.FilterMessage("connection closed").Len() == 1 }, "the close to be logged")
	closed := ts.logs.FilterMessage("connection closed").All()
	if got := closed[0].ContextMap(); got["reason"] != string(ReasonSlowConsumer) || got["code"] != string(protocol.CodeSlowConsumer) {
		t.Errorf("close logged with %v, want reason and code slow_consumer", got)
	}
}

// A client may have max_in_flight REPORTs unanswered, and not one more: the next
// one, in the same read or a later one, gets ERROR too_many_in_flight naming both
// numbers.
func TestTooManyInFlight(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("later_read=%v", split), func(t *testing.T) {
			s := testSettings()
			s.MaxInFlight = 4
			ts := startServer(t, s)
			hold := make(chan struct{})
			ts.sp.mu.Lock()
			ts.sp.hold = hold // nothing is answered until the test ends
			ts.sp.mu.Unlock()
			t.Cleanup(func() { close(hold) }) // runs before the server's cleanup
			p := testutil.Dial(t, ts.addr)
			if w := p.Hello("greedy", ""); w.MaxInFlight != 4 {
				t.Fatalf("WELCOME %+v, want max_in_flight 4", w)
			}
			var stream []byte
			for seq := uint64(1); seq <= 5; seq++ {
				stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("r"))
			}
			if split {
				fifth := len(stream) / 5 * 4
				p.Write(stream[:fifth])
				testutil.Eventually(t, 5*time.Second, func() bool { return spooledCount(ts) == 4 }, "4 reports submitted")
				stream = stream[fifth:]
			}
			p.Write(stream)
			e := p.ExpectError(protocol.CodeTooManyInFlight)
			if e.Message != "5 reports unanswered, max_in_flight is 4" {
				t.Errorf("message %q", e.Message)
			}
			// The four within the window are persisted (submitted after the read that
			// queued the ERROR); the fifth is not.
			testutil.Eventually(t, 5*time.Second, func() bool { return spooledCount(ts) >= 4 }, "4 reports submitted")
			if got := spooledSeqs(t, ts); len(got) != 4 || got[5] != 0 {
				t.Errorf("spooled %v, want seqs 1-4", got)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return len(ts.obs.closed()) == 1 }, "the close")
			if got := ts.obs.closed()[0]; got != ReasonProtocol {
				t.Errorf("closed with %s, want %s", got, ReasonProtocol)
			}
		})
	}
}

// A client that keeps max_in_flight REPORTs in flight, sending more as the answers
// come (ACKs and NACKs alike), is never refused: the count follows the answers.
func TestFullWindowIsAllowed(t *testing.T) {
	s := testSettings()
	s.MaxInFlight = 8
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.Hello("window", "")
	seq := uint64(0)
	send := func(n int) {
		var stream []byte
		for range n {
			seq++
			stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("r"))
		}
		p.Write(stream)
	}
	send(8)
	for range 200 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != protocol.TypeAck && f.Type != protocol.TypeNack {
			t.Fatalf("got %s %q", f.Type, f.Payload)
		}
		send(1) // one answer, one more report: 8 in flight again
	}
	if got := ts.obs.closed(); len(got) != 0 {
		t.Fatalf("closed: %v", got)
	}
}

// max_in_flight is copied at accept, as max_frame_size: a reload applies to new
// connections only.
func TestMaxInFlightAppliesToNewConnections(t *testing.T) {
	s := testSettings()
	s.MaxInFlight = 2
	ts := startServer(t, s)
	old := testutil.Dial(t, ts.addr)
	old.Hello("old", "")
	ns := *s
	ns.MaxInFlight = 100
	ts.m.Apply(&ns)
	if w := testutil.Dial(t, ts.addr).Hello("new", ""); w.MaxInFlight != 100 {
		t.Fatalf("new connection's WELCOME %+v, want max_in_flight 100", w)
	}
	hold := make(chan struct{})
	ts.sp.mu.Lock()
	ts.sp.hold = hold
	ts.sp.mu.Unlock()
	t.Cleanup(func() { close(hold) })
	var stream []byte
	for seq := uint64(1); seq <= 3; seq++ {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("r"))
	}
	old.Write(stream)
	if e := old.ExpectError(protocol.CodeTooManyInFlight); !strings.Contains(e.Message, "max_in_flight is 2") {
		t.Fatalf("message %q", e.Message)
	}
}

// A frame whose first byte has arrived must be complete within the frame timeout,
// however many bytes trickle in (each keeps the heartbeat alive), before and after
// the handshake.
func TestFrameTimeoutOnDrip(t *testing.T) {
	report := protocol.AppendFrame(nil, protocol.TypeReport, 1, make([]byte, 1000))
	hello := protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "dripper"})
	for _, tc := range []struct {
		name      string
		handshake bool
		frame     []byte
		start     int // bytes sent at once before the drip
		end       int // the drip stops before this byte
		says      string
	}{
		{"after a header", true, report, protocol.HeaderSize + 1, len(report) - 1, "of 1020 bytes (limits.frame_timeout is 300ms)"},
		{"inside a header", true, report, 3, protocol.HeaderSize - 1, "of its 16 header bytes"},
		{"first frame", false, hello, protocol.HeaderSize + 1, len(hello) - 1, fmt.Sprintf("of %d bytes", len(hello))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSettings()
			s.FrameTimeout = 300 * time.Millisecond
			s.HandshakeTimeout = time.Minute
			s.HeartbeatTimeout = time.Minute
			ts := startServer(t, s)
			p := testutil.Dial(t, ts.addr)
			if tc.handshake {
				p.Hello("dripper", "")
			}
			p.Write(tc.frame[:tc.start])
			stop := make(chan struct{})
			dripped := make(chan struct{})
			go func() {
				defer close(dripped)
				tk := time.NewTicker(20 * time.Millisecond)
				defer tk.Stop()
				// One byte per tick, never the whole frame: it stays incomplete.
				for i := tc.start; i < tc.end; i++ {
					select {
					case <-stop:
						return
					case <-tk.C:
					}
					if _, err := p.Conn.Write(tc.frame[i : i+1]); err != nil {
						return
					}
				}
			}()
			e := p.ExpectError(protocol.CodeFrameTimeout)
			close(stop)
			<-dripped
			if !strings.HasPrefix(e.Message, "frame started ") || !strings.Contains(e.Message, tc.says) {
				t.Errorf("message %q, want it to contain %q", e.Message, tc.says)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return len(ts.obs.closed()) == 1 }, "the close")
			if got := ts.obs.closed()[0]; got != ReasonFrameTimeout {
				t.Errorf("closed with %s, want %s", got, ReasonFrameTimeout)
			}
		})
	}
}

// The frame clock is per frame: frames that each complete within the frame timeout
// pass however long the stream of them lasts, even when every read ends inside a
// frame (so a new partial frame starts in a read that completes another).
func TestFrameTimeoutIsPerFrame(t *testing.T) {
	s := testSettings()
	s.FrameTimeout = 600 * time.Millisecond
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.Hello("steady", "")
	var stream []byte
	const frames = 10
	for seq := uint64(1); seq <= frames; seq++ {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte("0123456789"))
	}
	size := len(stream) / frames
	half := size / 2
	start := time.Now()
	// Each write completes a frame and ends halfway through the next; the writes are
	// 150 ms apart, so the stream takes 1.5 s, over two frame timeouts, while each
	// frame takes 150 ms.
	p.Write(stream[:half])
	for i := 1; i <= frames; i++ {
		time.Sleep(150 * time.Millisecond) // pacing the stream, not waiting for the server
		p.Write(stream[(i-1)*size+half : min(i*size+half, len(stream))])
	}
	for range frames {
		p.Expect(protocol.TypeAck)
	}
	if time.Since(start) < 2*s.FrameTimeout {
		t.Fatalf("the stream took %s, too short to prove anything", time.Since(start))
	}
	if got := ts.obs.closed(); len(got) != 0 {
		t.Fatalf("closed: %v", got)
	}
}
