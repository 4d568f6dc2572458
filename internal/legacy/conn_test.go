package legacy

import (
	"io"
	"net"
	"testing"
	"time"
)

// A read of heartbeats only is released (and its entry recycled) as soon as it is
// queued; the entry must go back to the pool once, or two later reads would share
// it. Two Gets right after must not return the same entry.
func TestHeartbeatReadRecyclesItsEntryOnce(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	go io.Copy(io.Discard, client) // the heartbeat's reply
	c := &lconn{l: &Listener{name: "t", format: FormatFFFF, codec: ffffCodec{}, obs: NopObserver{}}, nc: server, maxFrame: 1024}
	c.buf = AppendFFFFPacket(make([]byte, 0, initialReadBuf), FFFFHeartbeat, []byte(heartbeatContent))
	c.rlen = len(c.buf)
	c.buf = c.buf[:cap(c.buf)]
	c.parse(time.Now())
	a, b := entryPool.Get().(*entry), entryPool.Get().(*entry)
	if a == b {
		t.Fatal("the heartbeat read's entry was put back into the pool twice")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) != 0 {
		t.Errorf("%d reads still queued", len(c.queue))
	}
}
