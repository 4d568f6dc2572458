package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// TestPlainReaderWaitsOnFreshGoroutine: a plaintext reader that read a second or
// more after it started ends at its next wait holding no input, and a fresh
// goroutine (serveIdlePlain) waits in its place; the connection goes on through it.
func TestPlainReaderWaitsOnFreshGoroutine(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("agent-1", "")
	waitsFresh := func() bool { return goroutineIn(".serveIdlePlain(") }
	if waitsFresh() {
		t.Fatal("the reader was replaced before it read for a second")
	}
	ping := pinger(t, p)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ping()
		return waitsFresh()
	}, "a fresh goroutine waiting for the plaintext connection's input")
	ping()
	p.Send(protocol.TypeReport, 1, []byte("after the respawn"))
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ACK seq %d, want 1", f.Seq)
	}
}
