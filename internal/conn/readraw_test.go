package conn

import (
	"net"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// TestReaderWriteFailureEndsConnection: an active plaintext connection's reads are
// served inside RawRead (readRaw), which holds the descriptor's read lock, and
// net.Conn.Close waits for that lock. A PONG the reader writes itself onto a socket
// that can no longer send must still end the connection, not leave its reader
// waiting on its own lock.
func TestReaderWriteFailureEndsConnection(t *testing.T) {
	ts := startServer(t, testSettings())
	for i := range 20 {
		p := testutil.Dial(t, ts.addr)
		p.Hello("agent-1", "")
		var c *Conn
		testutil.Eventually(t, 5*time.Second, func() bool {
			for _, x := range ts.m.reg.Snapshot(nil) {
				if x.state.Load() == stateActive {
					c = x
				}
			}
			return c != nil
		}, "connection %d active", i)
		// The server's side can no longer send: its next write fails (EPIPE).
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		done := c.Done()
		p.Send(protocol.TypePing, 0, nil)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d: not torn down 5 s after its PONG could not be written", i)
		}
		p.Conn.Close()
	}
}
