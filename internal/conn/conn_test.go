package conn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hawk-agents/hawk/internal/auth"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestHandshakeWelcome(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	w := p.Hello("agent-1", "")
	if w.ServerID != "test" || w.ServerVersion != "v-test" || w.HeartbeatIntervalMS != 1000 || w.MaxFrameSize != 1<<20 || w.MaxInFlight != 1024 || w.ConnID == 0 {
		t.Fatalf("WELCOME = %+v", w)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	s := testSettings()
	s.HandshakeTimeout = 200 * time.Millisecond
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	e := p.ExpectError(protocol.CodeHandshakeTimeout)
	if !strings.Contains(e.Message, "HELLO") {
		t.Fatalf("message %q does not say what was missing", e.Message)
	}
}

func TestBadToken(t *testing.T) {
	s := testSettings()
	s.Auth = auth.MustSet("t good *")
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "a", Token: "bad"}))
	p.ExpectError(protocol.CodeUnauthorized)

	ok := testutil.Dial(t, ts.addr)
	ok.Hello("a", "good")
}

func TestReportAckedAndSpooled(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("agent-7", "")
	var stream []byte
	for seq := uint64(1); seq <= 50; seq++ {
		stream = protocol.AppendFrame(stream, protocol.TypeReport, seq, []byte(fmt.Sprintf(`{"n":%d}`, seq)))
	}
	p.Write(stream)
	acked := map[uint64]bool{}
	for len(acked) < 50 {
		f := p.Expect(protocol.TypeAck)
		if acked[f.Seq] {
			t.Fatalf("seq %d acked twice", f.Seq)
		}
		acked[f.Seq] = true
	}
	ts.sp.mu.Lock()
	lines := bytes.Split(bytes.TrimSpace(ts.sp.lines), []byte("\n"))
	ts.sp.mu.Unlock()
	if len(lines) != 50 {
		t.Fatalf("spool got %d lines, want 50", len(lines))
	}
	var rec struct {
		ClientID string          `json:"client_id"`
		Seq      uint64          `json:"seq"`
		Payload  json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(lines[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ClientID != "agent-7" || rec.Seq != 1 || string(rec.Payload) != `{"n":1}` {
		t.Fatalf("first record = %+v", rec)
	}
}

// Any split of the byte stream must decode the same: here one byte per write.
func TestOneByteAtATime(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	stream := protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "slow"})
	stream = protocol.AppendFrame(stream, protocol.TypeReport, 9, []byte("hello"))
	stream = protocol.AppendFrame(stream, protocol.TypePing, 3, nil)
	for i := range stream {
		p.Write(stream[i : i+1])
	}
	p.Expect(protocol.TypeWelcome)
	got := map[protocol.Type]uint64{}
	for len(got) < 2 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got[f.Type] = f.Seq
	}
	if got[protocol.TypeAck] != 9 || got[protocol.TypePong] != 3 {
		t.Fatalf("got %v, want ACK 9 and PONG 3", got)
	}
}

func TestLargeFrameBeyondReadBuffer(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("big", "")
	payload := bytes.Repeat([]byte{0xAB}, 3*readBufSize+17)
	p.Send(protocol.TypeReport, 1, payload)
	p.Send(protocol.TypeReport, 2, []byte("small"))
	// Acks may come in any order (the fake spool commits each submit on its own).
	got := map[uint64]bool{p.Expect(protocol.TypeAck).Seq: true, p.Expect(protocol.TypeAck).Seq: true}
	if !got[1] || !got[2] {
		t.Fatalf("acked %v, want 1 and 2", got)
	}
	ts.sp.mu.Lock()
	defer ts.sp.mu.Unlock()
	if !bytes.Contains(ts.sp.lines, []byte(base64.StdEncoding.EncodeToString(payload))) {
		t.Fatal("the large payload did not reach the spool intact")
	}
}

func TestPingPong(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("a", "")
	p.Send(protocol.TypePing, 77, nil)
	if f := p.Expect(protocol.TypePong); f.Seq != 77 {
		t.Fatalf("PONG seq %d, want 77", f.Seq)
	}
}

func TestHeartbeatTimeoutReaps(t *testing.T) {
	s := testSettings()
	s.HeartbeatTimeout = 300 * time.Millisecond
	ts := startServer(t, s)
	quiet := testutil.Dial(t, ts.addr)
	quiet.Hello("quiet", "")
	chatty := testutil.Dial(t, ts.addr)
	chatty.Hello("chatty", "")
	// chatty pings well within the timeout and must survive while quiet is reaped.
	stop := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				chatty.Conn.Write(protocol.AppendFrame(nil, protocol.TypePing, 1, nil))
			}
		}
	}()
	e := quiet.ExpectError(protocol.CodeHeartbeatTimeout)
	close(stop)
	<-pinged
	if !strings.Contains(e.Message, "300ms") {
		t.Fatalf("message %q does not name the timeout", e.Message)
	}
	chatty.Send(protocol.TypePing, 2, nil)
	for {
		f, err := chatty.Next(2 * time.Second)
		if err != nil {
			t.Fatalf("chatty connection was closed: %v", err)
		}
		if f.Type == protocol.TypePong && f.Seq == 2 {
			break
		}
	}
}

func TestMaxConns(t *testing.T) {
	s := testSettings()
	s.MaxConns = 2
	ts := startServer(t, s)
	a := testutil.Dial(t, ts.addr)
	a.Hello("a", "")
	b := testutil.Dial(t, ts.addr)
	b.Hello("b", "")
	c := testutil.Dial(t, ts.addr)
	c.ExpectError(protocol.CodeTooManyConns)
	// Existing connections are untouched.
	a.Send(protocol.TypeReport, 1, []byte("x"))
	a.Expect(protocol.TypeAck)
	b.Send(protocol.TypePing, 1, nil)
	b.Expect(protocol.TypePong)
}

func TestMalformedFramesGetPreciseErrors(t *testing.T) {
	ts := startServer(t, testSettings())
	good := protocol.AppendFrame(nil, protocol.TypeReport, 5, []byte("payload"))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		hello bool
		bytes []byte
		code  protocol.Code
		says  string
	}{
		{"bad magic", true, []byte("GET / HTTP/1.1\r\n\r\n"), protocol.CodeBadMagic, "magic"},
		{"bad version", true, mut(func(b []byte) []byte { b[2] = 9; return b }), protocol.CodeUnsupportedVersion, "version 9"},
		{"unknown type", true, mut(func(b []byte) []byte { b[3] = 42; return b }), protocol.CodeUnknownType, "type 42"},
		{"too large", true, mut(func(b []byte) []byte { b[4] = 0x7f; return b[:protocol.HeaderSize] }), protocol.CodeFrameTooLarge, "exceeds limit"},
		{"bad crc", true, mut(func(b []byte) []byte { b[protocol.HeaderSize] ^= 1; return b }), protocol.CodeBadCRC, "crc32c mismatch"},
		{"report before hello", false, good, protocol.CodeProtocol, "expected HELLO"},
		{"second hello", true, protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "x"}), protocol.CodeProtocol, "second HELLO"},
		{"server frame from client", true, protocol.AppendFrame(nil, protocol.TypeAck, 1, nil), protocol.CodeProtocol, "ACK"},
		{"hello not json", false, protocol.AppendFrame(nil, protocol.TypeHello, 0, []byte("{")), protocol.CodeBadPayload, "HELLO"},
		{"hello without id", false, protocol.AppendFrame(nil, protocol.TypeHello, 0, []byte("{}")), protocol.CodeBadPayload, "client_id"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testutil.Dial(t, ts.addr)
			if tc.hello {
				p.Hello(fmt.Sprintf("m%d", i), "")
			}
			p.Write(tc.bytes)
			e := p.ExpectError(tc.code)
			if !strings.Contains(e.Message, tc.says) {
				t.Fatalf("message %q does not contain %q", e.Message, tc.says)
			}
		})
	}
}

// A client that never reads must not stall anyone else; it is cut once the server's
// writes to it have made no progress for the write timeout.
func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	s := testSettings()
	s.WriteTimeout = 500 * time.Millisecond
	s.HeartbeatTimeout = time.Minute
	ts := startServer(t, s)
	slow := testutil.DialReadBuffer(t, ts.addr, 4096)
	slow.Hello("slow", "")
	// Pings answered with pongs the slow peer never reads, until the server's writes block.
	ping := protocol.AppendFrame(nil, protocol.TypePing, 1, nil)
	burst := bytes.Repeat(ping, 4096)
	go func() {
		// Until the server cuts it off (or the test's cleanup closes the socket).
		for {
			if _, err := slow.Conn.Write(burst); err != nil {
				return
			}
		}
	}()
	fast := testutil.Dial(t, ts.addr)
	fast.Hello("fast", "")
	for seq := uint64(1); seq <= 20; seq++ {
		fast.Send(protocol.TypeReport, seq, []byte("r"))
		if f := fast.Expect(protocol.TypeAck); f.Seq != seq {
			t.Fatalf("ack %d, want %d", f.Seq, seq)
		}
	}
	// The slow peer is eventually closed by the reaper.
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ts.obs.closed()) == 1 },
		"the non-reading client to be closed at the write timeout")
	if got := ts.obs.closed(); got[0] != ReasonSlowConsumer {
		t.Fatalf("closed with %v, want slow_consumer", got)
	}
}

func TestDrainGoawayThenServesUntilClientLeaves(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("d", "")
	ts.ln.Close()
	res := make(chan DrainResult, 1)
	go func() { res <- ts.m.Drain(context.Background(), "upgrade") }()
	f := p.Expect(protocol.TypeGoaway)
	var g protocol.Goaway
	if err := protocol.ParseJSON(f, &g); err != nil {
		t.Fatal(err)
	}
	if g.Reason != "upgrade" || g.DeadlineMS <= 0 || g.DeadlineMS > 3000 {
		t.Fatalf("GOAWAY = %+v", g)
	}
	// Still served after GOAWAY.
	p.Send(protocol.TypeReport, 1, []byte("late"))
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ack %d", f.Seq)
	}
	p.Conn.Close()
	r := <-res
	if r.Goaways != 1 || r.Closed != 1 || r.Cut != 0 {
		t.Fatalf("drain result %+v", r)
	}
}

func TestDrainCutsAtDeadline(t *testing.T) {
	s := testSettings()
	s.DrainTimeout = 300 * time.Millisecond
	s.DrainSpread = 0
	ts := startServer(t, s)
	p := testutil.Dial(t, ts.addr)
	p.Hello("stubborn", "")
	ts.ln.Close()
	res := make(chan DrainResult, 1)
	go func() { res <- ts.m.Drain(context.Background(), "shutdown") }()
	p.Expect(protocol.TypeGoaway)
	p.ExpectError(protocol.CodeDrainTimeout)
	if r := <-res; r.Cut != 1 {
		t.Fatalf("drain result %+v, want one cut", r)
	}
}

func TestTokenRevoked(t *testing.T) {
	s := testSettings()
	s.Auth = auth.MustSet("o old *", "k keep *")
	ts := startServer(t, s)
	revoked := testutil.Dial(t, ts.addr)
	revoked.Hello("r", "old")
	kept := testutil.Dial(t, ts.addr)
	kept.Hello("k", "keep")

	ns := *s
	ns.Auth = auth.MustSet("k keep *")
	if n := ts.m.Apply(&ns); n != 1 {
		t.Fatalf("Apply revoked %d connections, want 1", n)
	}
	revoked.ExpectError(protocol.CodeTokenRevoked)
	kept.Send(protocol.TypePing, 1, nil)
	kept.Expect(protocol.TypePong)
	again := testutil.Dial(t, ts.addr)
	again.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "r", Token: "old"}))
	again.ExpectError(protocol.CodeUnauthorized)
}

func TestNewerConnectionWins(t *testing.T) {
	ts := startServer(t, testSettings())
	old := testutil.Dial(t, ts.addr)
	old.Hello("same", "")
	newer := testutil.Dial(t, ts.addr)
	newer.Hello("same", "")
	old.ExpectError(protocol.CodeReplaced)
	newer.Send(protocol.TypePing, 1, nil)
	newer.Expect(protocol.TypePong)
}

func TestSpoolFailureNacksRetryable(t *testing.T) {
	ts := startServer(t, testSettings())
	ts.sp.mu.Lock()
	ts.sp.fail = errors.New("spool: write: no space left on device")
	ts.sp.mu.Unlock()
	p := testutil.Dial(t, ts.addr)
	p.Hello("n", "")
	p.Send(protocol.TypeReport, 4, []byte("x"))
	f := p.Expect(protocol.TypeNack)
	var n protocol.Nack
	if err := protocol.ParseJSON(f, &n); err != nil {
		t.Fatal(err)
	}
	if f.Seq != 4 || !n.Retryable || n.Code != protocol.CodeSpoolWrite || !strings.Contains(n.Message, "no space") {
		t.Fatalf("NACK seq %d %+v", f.Seq, n)
	}
}
