package conn

import "github.com/hawk-agents/hawk/internal/mono"

// An idle plaintext connection's reader waits on a fresh 2 KiB stack, as an idle
// TLS one does (tlsidle.go). Its wait is shallow, but what it ran since it started
// need not be: answering a PING queues a PONG and starts a flusher, and taking a
// read buffer from an emptied pool allocates one; now and then (after a GC) one of
// those runs past 2 KiB and the stack is copied to 4 KiB. The runtime never halves
// it again while the reader waits (its frames and the runtime's guard are more than
// a quarter of 4 KiB), so at 15,000 heartbeating agents the stacks grew from 2.0 to
// 2.7 KiB per connection in 80 s, on their way to 4. A reader that has read since
// it started and holds no input ends at its next wait instead, and a fresh
// goroutine waits in its place: the same respawnAfter keeps this to about one
// goroutine a second on a busy connection, and one per heartbeat on an idle one.

// plainIdle reports whether c is a plaintext connection holding no input: its next
// read would take a buffer only if the socket has bytes.
func (c *Conn) plainIdle() bool { return !c.isTLS() && c.rlen == 0 }

// serveIdlePlain is serve(false) on a fresh goroutine.
func (c *Conn) serveIdlePlain() {
	if c.rbuf != nil {
		// The read below would give it back before waiting if the socket is empty;
		// given back now, the pool has it for whichever reader has bytes first.
		putReadBuf(c.rbuf)
		c.rbuf = nil
	}
	c.serveFrom(false, mono.Now())
}
