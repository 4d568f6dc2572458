package conn

import (
	"fmt"
	"github.com/hawk-agents/hawk/internal/auth"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// A connection told ERROR gives its limits.max_conns slot back at once, not when
// its socket finally closes: the next client is served while the first lingers.
func TestSlotFreesAtTheError(t *testing.T) {
	s := testSettings()
	s.MaxConns = 1
	ts := startServer(t, s)
	first := testutil.Dial(t, ts.addr)
	first.Hello("first", "")
	first.Send(protocol.TypeHello, 0, []byte(`{"client_id":"again"}`)) // a second HELLO: ERROR
	first.ExpectError(protocol.CodeProtocol)
	// first keeps its socket open: the server lingers for it to close.
	second := testutil.Dial(t, ts.addr)
	if w := second.Hello("second", ""); w.ConnID == 0 {
		t.Fatalf("second client not welcomed: %+v", w)
	}
}

// A handshake timeout is logged once, however many reaper passes see the
// connection while its ERROR lingers; the close line names the ERROR code.
func TestHandshakeTimeoutLoggedOnceWithItsCode(t *testing.T) {
	s := testSettings()
	s.HandshakeTimeout = 100 * time.Millisecond
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.ExpectError(protocol.CodeHandshakeTimeout)
	// The peer never closes: the server cuts it after the linger, many passes later.
	testutil.Eventually(t, 10*time.Second, func() bool { return ts.logs.FilterMessage("connection closed").Len() == 1 },
		"the connection to be closed")
	if n := ts.logs.FilterMessage("handshake failed").Len(); n != 1 {
		t.Errorf(`%d "handshake failed" lines, want 1`, n)
	}
	closed := ts.logs.FilterMessage("connection closed").All()[0].ContextMap()
	if closed["code"] != string(protocol.CodeHandshakeTimeout) || closed["reason"] != string(ReasonHandshake) {
		t.Errorf("close logged with %v, want code %s reason %s", closed, protocol.CodeHandshakeTimeout, ReasonHandshake)
	}
}

// limits.max_frame_size bounds the frames after the handshake: however small, it
// does not refuse a valid HELLO (whose own limit is maxHelloSize).
func TestSmallFrameLimitAcceptsAValidHello(t *testing.T) {
	s := testSettings()
	s.MaxFrameSize = 64
	token := strings.Repeat("t", 200)
	s.Auth = auth.MustSet("t " + token + " *")
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	if w := p.Hello("an-agent-with-a-long-enough-client-id", token); w.MaxFrameSize != 64 {
		t.Fatalf("WELCOME %+v, want max_frame_size 64", w)
	}
	p.Send(protocol.TypeReport, 1, make([]byte, 65))
	p.ExpectError(protocol.CodeFrameTooLarge)
}

// A frame header announcing a large payload pins no buffer of that size: the read
// buffer grows with the bytes that arrive. 20 connections each announce a 4 MiB
// frame and send its first bytes; the heap must not grow by anything like 80 MiB.
func TestFrameHeaderPinsNoLargeBuffer(t *testing.T) {
	s := testSettings()
	s.MaxFrameSize = 4 << 20
	s.HeartbeatTimeout = time.Minute // the last peers wait while the first send their frames
	s.FrameTimeout = time.Minute
	ts := startServer(t, s)
	const conns = 20
	peers := make([]*testutil.Peer, conns)
	for i := range peers {
		peers[i] = testutil.Dial(t, ts.addr)
		peers[i].Hello(fmt.Sprintf("c%d", i), "")
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	frame := protocol.AppendFrame(nil, protocol.TypeReport, 1, make([]byte, 4<<20-64))
	for _, p := range peers {
		p.Write(frame[:100]) // the header and a few payload bytes
	}
	// The frames are incomplete, so nothing answers them: wait until the server has
	// read every header (BytesIn counts them).
	testutil.Eventually(t, 5*time.Second, func() bool {
		n := uint64(0)
		for _, in := range ts.m.Connections(0, conns) {
			n += in.BytesIn
		}
		return n >= conns*100
	}, "the server to read every header")
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 16<<20 {
		t.Fatalf("heap in use grew by %d MiB for %d frame headers", grown>>20, conns)
	}
	// The frames still complete, through a growing buffer. The peers send at once, so
	// no frame's clock runs while another peer's 4 MiB go through; how long 80 MiB take
	// on a loaded machine is not what this test is about, hence the minute.
	errs := make(chan error, conns)
	for _, p := range peers {
		go func() {
			p.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
			_, err := p.Conn.Write(frame[100:])
			errs <- err
		}()
	}
	for range peers {
		if err := <-errs; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	for _, p := range peers {
		f, err := p.Next(time.Minute)
		if err != nil {
			t.Fatalf("waiting for ACK: %v", err)
		}
		if f.Type != protocol.TypeAck || f.Seq != 1 {
			t.Fatalf("got %s %d, want ACK 1", f.Type, f.Seq)
		}
	}
}

// HELLO is parsed exactly: keys are case-sensitive, a duplicate is refused, and raw
// bytes are validated before decoding, so two ids differing in an invalid byte are
// not folded into one client.
func TestHelloParsedExactly(t *testing.T) {
	ts := startServer(t, testSettings())
	for _, payload := range []string{
		`{"Client_ID":"a"}`,
		`{"client_id":"a","client_id":"b"}`,
		"{\"client_id\":\"coll\xffX\"}",
		`{"client_id":"\ud800"}`,
	} {
		p := testutil.Dial(t, ts.addr)
		p.Send(protocol.TypeHello, 0, []byte(payload))
		if e := p.ExpectError(protocol.CodeBadPayload); !strings.Contains(e.Message, "HELLO") {
			t.Errorf("%q: ERROR %q does not name the HELLO", payload, e.Message)
		}
	}
}
