package conn

import (
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// An idle TLS connection's reader waits on a small stack, as a plaintext one's
// does. Opening a record (the record layer, then AES-GCM's Open and its
// assembly) runs deeper than the 2 KiB a goroutine starts with, so the first
// record a reader opens grows its stack to 4 KiB; a parked goroutine's stack is
// never shrunk back below that (the runtime halves a stack only when a quarter
// of it holds the live frames and its guard), and for a heartbeating agent that
// is 2 KiB more per connection for ever. So a TLS reader that has read since it
// started and is about to wait with nothing held ends, and a fresh goroutine
// waits in its place: it waits for input without reading (waitReadable) at the
// top of its stack, shallower than a read through the record layer, which keeps
// the average stack size the runtime starts new goroutines with at 2 KiB too.
// Before it waits the session rests (tlsrecord's Conn.Rest): its AEADs, 1.5 KiB,
// are built again by the next record.
// Only a goroutine that read at least respawnAfter after it started ends so:
// a heartbeating agent's reader is replaced at each heartbeat, a busy one about
// once a second, which keeps the cost (a goroutine, its stack grown again, a
// peek) off the per-report path.

// respawnAfter is how long a TLS reader reads before it may end at a wait (a
// variable only so that BenchmarkHeartbeat can take the idle path every time).
var respawnAfter = int64(time.Second)

// tlsIdle reports whether c is a TLS connection in the record layer with no
// input held: its next read would wait on the socket.
func (c *Conn) tlsIdle() bool {
	if !c.isTLS() || c.rlen != 0 {
		return false
	}
	rl := c.session().rl
	return rl != nil && !rl.Ready()
}

// serveAnew starts c's reader on a new goroutine once its handshake is done or
// it was adopted. An agent may send nothing until its first heartbeat, tens of
// seconds later: an idle TLS session rests at once, not at that heartbeat's wait
// (1.5 KiB of AEADs a connection meanwhile, at every fleet start and upgrade), and
// a plaintext connection with nothing to read parks (plainidle.go).
func (c *Conn) serveAnew() {
	if c.tlsIdle() {
		spawn(c, (*Conn).serveIdleTLS)
		return
	}
	if c.parkable() && c.park() {
		return // a plaintext one parks at once: no goroutine until its first bytes
	}
	go c.serve(false)
}

// serveIdleTLS is serve(false) on a fresh goroutine, which first waits for the
// socket to be readable with no buffer held.
func (c *Conn) serveIdleTLS() {
	born := mono.Now() // its wait counts: the read after it may end it again
	if c.rbuf != nil {
		// readTLS would give it back before waiting; the wait below comes first.
		putReadBuf(c.rbuf)
		c.rbuf = nil
	}
	// The session has been quiet a while: its AEADs go until the next record.
	s := c.session()
	s.rl.Rest()
	// An error (a deadline, a close) comes again from the read that follows.
	s.t.waitReadable()
	c.serveFrom(false, born, false)
}

// waitReadable waits until the socket has input, an end of input or an error,
// or a read deadline passes, and reads nothing.
func (t *tlsTransport) waitReadable() error { return t.rc.Read(peekReadable) }

// peekReadable is a syscall.RawConn read callback: true once the socket has
// something to read. It always looks before the goroutine parks (see readRaw).
func peekReadable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN
}
