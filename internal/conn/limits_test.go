package conn

import (
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
	s.Tokens = map[string]struct{}{token: {}}
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	if w := p.Hello("an-agent-with-a-long-enough-client-id", token); w.MaxFrameSize != 64 {
		t.Fatalf("WELCOME %+v, want max_frame_size 64", w)
	}
	p.Send(protocol.TypeReport, 1, make([]byte, 65))
	p.ExpectError(protocol.CodeFrameTooLarge)
}
