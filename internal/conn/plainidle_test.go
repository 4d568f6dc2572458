package conn

import (
	"testing"

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
	ping := waitsOnFreshGoroutine(t, p, ".serveIdlePlain(")
	ping()
	p.Send(protocol.TypeReport, 1, []byte("after the respawn"))
	if f := p.Expect(protocol.TypeAck); f.Seq != 1 {
		t.Fatalf("ACK seq %d, want 1", f.Seq)
	}
}
