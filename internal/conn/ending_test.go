package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// TestDoneMadeWhenAsked: a connection's Done is made by the first who asks, and
// closed by the teardown; one nobody asked for is torn down without a channel of
// its own, and asking afterwards gets a closed one. Either way the close reason
// (kept only once the connection ends) is the one that ended it.
func TestDoneMadeWhenAsked(t *testing.T) {
	ts := startServer(t, testSettings())
	p1, p2 := testutil.Dial(t, ts.addr), testutil.Dial(t, ts.addr)
	p1.Hello("agent-1", "")
	p2.Hello("agent-2", "")
	conns := ts.m.reg.Snapshot(nil)
	if len(conns) != 2 {
		t.Fatalf("%d connections registered, want 2", len(conns))
	}
	asked, other := conns[0], conns[1]
	done := asked.Done()
	select {
	case <-done:
		t.Fatal("Done closed before the teardown")
	default:
	}
	other.wmu.Lock()
	if other.done != nil || other.end != nil {
		t.Error("a live connection nobody waits for holds a done channel or an ending")
	}
	other.wmu.Unlock()

	p1.Conn.Close()
	p2.Conn.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed by the teardown")
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		other.wmu.Lock()
		defer other.wmu.Unlock()
		return other.done != nil
	}, "the other connection's teardown")
	select {
	case <-other.Done():
	default:
		t.Fatal("Done asked after the teardown is not closed")
	}
	for _, c := range conns {
		c.wmu.Lock()
		if r := c.reasonLocked(); r != ReasonClient {
			t.Errorf("close reason %q, want %q", r, ReasonClient)
		}
		c.wmu.Unlock()
	}
}
