package conn

import "github.com/hawk-agents/hawk/internal/mono"

// An idle plaintext connection has no goroutine on Linux: its reader parks the
// connection in the Manager's idle poller (idlepoll_linux.go) and ends, and a
// reader is started again when the socket has bytes or ends (serveWoken), or when
// the server needs it: to close the connection, to bound a goodbye's linger, to
// hand it over (wakeParked). A goroutine's stack is 2 KiB at the least, half of
// what an idle connection cost with one; an agent that heartbeats costs a short
// goroutine per heartbeat instead.
//
// A reader parks where it would otherwise wait on the socket after a while:
// after the handshake with nothing more to read (serveAnew), after a read
// respawnAfter since it started with nothing held (a busy connection, about once
// a second), and, started by the poller after the connection had been parked at
// least respawnAfter, as soon as the socket is empty (parkWhenQuiet: an agent's
// heartbeat). A client that sends again sooner keeps its reader until the next
// of those points, so a busy connection pays for a park about once a second, not
// per read.
//
// Elsewhere (no idle poller) the reader ends at those points only after
// respawnAfter, and a fresh goroutine waits in its place: its wait is shallow,
// but what the old one ran need not have been (answering a PING queues a PONG and
// starts a flusher; taking a read buffer from an emptied pool allocates one), and
// the runtime never halves a waiting goroutine's 4 KiB stack again.

// parkWhenQuiet, in born, marks a reader started by the idle poller for a
// connection parked at least respawnAfter: it parks again as soon as the socket
// is empty. born's low bit is always set (never 0), so the flag takes the next.
const parkWhenQuiet = 2

// readerBorn is a reader's born from the time it started: never 0, and with
// parkWhenQuiet set only if quiet (a time's own low bits are cleared: they would
// set it at random).
func readerBorn(t int64, quiet bool) int64 {
	b := t&^(parkWhenQuiet|1) | 1
	if quiet {
		b |= parkWhenQuiet
	}
	return b
}

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
	c.serveFrom(false, mono.Now(), false)
}

// parkable reports whether c's reader may park c now: a plaintext connection,
// active, holding no input and no upload, with an idle poller to park in.
func (c *Conn) parkable() bool {
	return c.m.idle != nil && c.plainIdle() && c.up == nil && c.state.Load() == stateActive
}

// park parks c in the idle poller, on its reader; true if the reader must end.
// The time it parked is kept in born, which no reader uses meanwhile.
func (c *Conn) park() bool {
	if c.rbuf != nil {
		putReadBuf(c.rbuf)
		c.rbuf = nil
	}
	c.born = mono.Now()
	return c.m.idle.park(c)
}

// mustRead reports whether the server needs c's reader, which a parked connection
// has not: it is closing (its reader drains input and ends at a deadline, or
// reads the closed socket's error) or asked to move to the next process.
func (c *Conn) mustRead() bool {
	if c.handoffAsked() {
		return true
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closing
}

// wakeParked starts c's reader if c is parked: whoever changes what the reader
// must do (closes the socket, sets a read deadline, asks a handoff) calls it
// after the change, which the reader then sees. Lock order: wmu, then the poller's.
func (c *Conn) wakeParked() {
	if p := c.m.idle; p != nil && p.unpark(c.id) != nil {
		spawn(c, (*Conn).serveWoken)
	}
}

// serveWoken is serve(false) on a goroutine the idle poller (or a wake) started.
func (c *Conn) serveWoken() {
	now := mono.Now()
	c.serveFrom(false, now, now-c.born >= respawnAfter)
}
