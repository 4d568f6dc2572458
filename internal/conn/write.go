package conn

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// maxPendingOut is how much output may wait for a connection (queued, or in the
// write in progress) before its reader stops reading: a client that does not read
// its ACKs is pushed back on by TCP, through the reader, instead of being cut. The
// flusher writes everything pending in one write, so output waits here only once
// the kernel's send buffer (hundreds of KiB to MiBs, autotuned) is full; buffering
// much more in user space would only pin memory. 256 KiB holds the answers to a full
// default window twice over even as NACKs (1024 × ~100 B), so a client that reads,
// even through a burst of NACKs, is not slowed, and 13,000 ACKs.
//
// It is a soft bound: once the reader stops, output still grows by what the last
// read produced (PONGs for the PINGs it held: at most the read buffer's size) and by
// the answers to the reports in flight (at most max_in_flight ACKs or NACKs), plus a
// GOAWAY and an ERROR. No producer but the reader is ever refused: an ACK is never
// dropped while the connection lives.
const maxPendingOut = 256 << 10

// resumeOutBelow is where the stopped reader starts again: half the bound, so that
// a client reading slowly does not stop and start the reader for every write.
const resumeOutBelow = maxPendingOut / 2

// lingerAfterError bounds how long a connection told ERROR may keep sending before
// its socket is closed.
const lingerAfterError = 2 * time.Second

// stallErrorGrace bounds the attempt to tell a slow consumer ERROR slow_consumer:
// it has read nothing for the write timeout, so the ERROR goes out only if the
// client reads now (Settings.stallErrorGrace overrides it in tests).
const stallErrorGrace = 100 * time.Millisecond

// aLongTimeAgo is a deadline in the past: setting it cancels a blocked write.
var aLongTimeAgo = time.Unix(1, 0)

// outLocked is the one way onto a connection's pending output, for every producer:
// the reader (WELCOME, PONG), the destination's committer (ACK, NACK), the drain
// (GOAWAY) and every ERROR. It returns the buffer to append to, or nil when nothing
// more may be queued because the connection is closing. It never refuses output
// for its size: the reader stops reading instead (see maxPendingOut). The caller
// holds wmu, appends, and calls queuedLocked.
func (c *Conn) outLocked() *[]byte {
	switch {
	case c.closing:
		return nil
	case c.out == nil:
		c.out = getWriteBuf()
		c.ackAt = -1
	}
	return c.out
}

// queuedLocked counts n frames of type t just appended by the caller of outLocked,
// makes sure a flusher is running (or the reader holding the output will write it),
// and tells the reader to stop reading when the
// pending output passed maxPendingOut. Caller holds wmu.
func (c *Conn) queuedLocked(t protocol.Type, n int) {
	c.framesOut.Add(uint64(n))
	c.m.obs.FramesOut(t, n)
	if !c.held && !c.flushing { // checked here: startFlushLocked is not inlined
		c.startFlushLocked()
	}
	if len(*c.out)+int(c.writing) > maxPendingOut && !c.outFull.Load() {
		c.outFull.Store(true)
	}
}

// startFlushLocked has the pending output written, unless a flush is under way.
// Caller holds wmu.
func (c *Conn) startFlushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	// A plaintext connection's output goes to the Manager's ACK writers, which
	// never wait for a socket; what may wait (a TLS write, the end of a
	// connection) gets a flusher of its own.
	if c.closing || c.isTLS() || !c.m.acks.hand(c) {
		spawn(c, (*Conn).flush) // allocates nothing per heartbeat (spawn.go)
	}
}

// drainedLocked wakes the stopped reader once the pending output is down to
// resumeOutBelow. Caller (the flusher) holds wmu.
func (c *Conn) drainedLocked() {
	if !c.outFull.Load() {
		return
	}
	pending := int(c.writing)
	if c.out != nil {
		pending += len(*c.out)
	}
	if pending <= resumeOutBelow {
		c.outFull.Store(false)
		c.wakeReaderLocked()
	}
}

// wakeReaderLocked wakes the reader if it waits for output to drain. Caller holds wmu.
func (c *Conn) wakeReaderLocked() {
	if c.resume != nil {
		close(c.resume)
		c.resume = nil
	}
}

// waitOutput is where the reader stops while outFull is set: until the flusher has
// brought the output down, or the connection closes. It parks on a channel made
// only now, so a reader that never has to wait costs nothing, and nothing polls.
func (c *Conn) waitOutput() {
	c.wmu.Lock()
	if c.closing || !c.outFull.Load() {
		c.wmu.Unlock()
		return
	}
	wake := make(chan struct{})
	c.resume = wake
	c.paused.Store(true)
	c.wmu.Unlock()
	<-wake
	c.unpause()
}

// unpause ends a pause of the reader (paused): the client's silence and its
// unfinished frame were the server's doing while it did not read, so their clocks
// start again now. On the reader.
func (c *Conn) unpause() {
	now := mono.Now()
	c.lastSeen.Store(now)
	if c.frameStart.Load() != 0 {
		c.frameStart.Store(now)
	}
	c.paused.Store(false)
}

// send queues one control frame (PONG, WELCOME, GOAWAY); false if it was not queued.
func (c *Conn) send(t protocol.Type, seq uint64, payload any) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.outLocked()
	if out == nil {
		return false
	}
	if payload == nil {
		*out = protocol.AppendFrame(*out, t, seq, nil)
	} else {
		*out = protocol.AppendJSON(*out, t, seq, payload)
	}
	c.queuedLocked(t, 1)
	return true
}

// Committed implements ingest.Waiter: the destination calls it once the batch
// holding these reports is durable (err == nil) or failed.
func (c *Conn) Committed(seqs []uint64, err error) {
	c.committedDedup(seqs, err)
	c.wmu.Lock()
	// Counted before the answers are written (the flusher writes only after wmu is
	// released), so that a client which has seen them and sends more is never
	// judged on a stale count (see handle). And counted under wmu with the queuing:
	// a handoff's quiet point (tryQuiet: all answered, no output, under wmu) must
	// not fall between the two, or it would close the output on an ACK not yet
	// queued, and the connection would move with that ACK dropped.
	c.answered.Add(uint64(len(seqs)))
	out := c.outLocked()
	if out == nil {
		// The connection is gone or going: the client resends whatever it has not
		// seen acked, and (client id, seq) tells a duplicate apart.
		c.wmu.Unlock()
		return
	}
	if err == nil {
		c.acksLocked(out, seqs)
	} else {
		c.nacksLocked(out, seqs, err)
	}
	c.wmu.Unlock()
	if err == nil {
		c.m.obs.Acked(len(seqs))
	} else {
		c.m.obs.Nacked(len(seqs))
	}
}

// SubmitWaits implements ingest.SubmitWaiter: the reader's Submit is about to block
// for room in the destination. The reader gives up its hold on the output, so that
// the ACKs of earlier reports, committed while it waits, go out now (by the ACK
// writers or a flusher) instead of when the Submit returns; and it is paused, so
// that the reaper does not take the client for silent while the server does not
// read it (serveRead unpauses it).
func (c *Conn) SubmitWaits() {
	c.submitWaited = true
	c.paused.Store(true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.held {
		return
	}
	c.held = false
	if c.out != nil && len(*c.out) > 0 {
		c.startFlushLocked()
	}
}

// flushHeld ends the reader's hold on the output (holdOutput): it writes what the
// read's work queued itself, as much as the socket takes at once. Whatever the
// socket does not take, or what is queued meanwhile, and a close, go to a flusher.
func (c *Conn) flushHeld() {
	c.wmu.Lock()
	if !c.held {
		c.wmu.Unlock()
		return
	}
	c.held = false
	if c.flushing || c.out == nil || len(*c.out) == 0 {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	if c.closing || c.stalled {
		c.wmu.Unlock()
		go c.flush()
		return
	}
	buf := c.out
	c.out = nil
	if !c.writeWhatFits(buf) {
		return
	}
	if (c.out != nil && len(*c.out) > 0) || c.closing || c.stalled {
		c.wmu.Unlock()
		go c.flush()
		return
	}
	c.flushing = false
	c.drainedLocked()
	c.wmu.Unlock()
}

// writeWhatFits writes buf, the pending output its caller took with flushing set,
// as far as the socket takes it without waiting. Called with wmu held, which it
// releases for the write. It reports whether all of it was written: buf is then
// given back and wmu held again. Otherwise wmu is released and another goroutine
// has taken the flush over: a flusher waiting for the socket, or the close after
// a failed write.
func (c *Conn) writeWhatFits(buf *[]byte) bool {
	c.writing = int32(len(*buf))
	c.wmu.Unlock()
	n, err := c.writeNow(buf)
	c.bytesOut.Add(uint64(n))
	c.m.obs.BytesOut(n)
	if err != nil {
		// On another goroutine: it closes the socket, and the reader may be inside
		// RawRead, whose read lock Close waits for (readRaw).
		go c.writeFailed(buf, n)
		return false
	}
	if n < len(*buf) {
		go c.flushFrom(buf, n) // the socket is full: a flusher waits for it
		return false
	}
	putWriteBuf(buf)
	c.wmu.Lock()
	c.writing = 0
	return true
}

// flushFrom finishes the write of buf, of which sent bytes are written, then
// flushes on.
func (c *Conn) flushFrom(buf *[]byte, sent int) {
	n, err := c.writeFrom(buf, sent)
	c.bytesOut.Add(uint64(n - sent))
	c.m.obs.BytesOut(n - sent)
	if err != nil {
		c.writeFailed(buf, n)
		return
	}
	putWriteBuf(buf)
	c.flush()
}

// flush writes everything pending in one write, again and again until nothing is
// pending, then exits. A write that makes no progress is cut by the reaper (stall),
// not by a deadline.
func (c *Conn) flush() {
	for {
		c.wmu.Lock()
		c.writing = 0
		if c.stalled {
			// Cut between two writes: what was written ends with a whole frame.
			c.flushing = false
			c.wmu.Unlock()
			c.endStalled(nil)
			return
		}
		buf := c.out
		c.out = nil
		if buf == nil || len(*buf) == 0 {
			c.flushing = false
			c.drainedLocked()
			closing, reason := c.closing, c.reasonLocked()
			c.wmu.Unlock()
			putWriteBuf(buf)
			if closing {
				c.finish(reason)
			}
			return
		}
		c.writing = int32(len(*buf))
		c.drainedLocked()
		c.wmu.Unlock()

		n, err := c.write(buf)
		c.bytesOut.Add(uint64(n))
		c.m.obs.BytesOut(n)
		if err != nil {
			c.writeFailed(buf, n)
			return
		}
		putWriteBuf(buf)
	}
}

// writeFailed ends the flush whose write of buf failed after n bytes.
func (c *Conn) writeFailed(buf *[]byte, n int) {
	c.wmu.Lock()
	c.flushing = false
	c.writing = 0
	stalled := c.stalled
	c.wmu.Unlock()
	if stalled {
		c.endStalled((*buf)[n:frameEnd(*buf, n)])
	} else {
		c.closeNow(ReasonClient)
	}
	putWriteBuf(buf)
}

// write writes all of *p through the raw socket, so that it can record each bit of
// progress for the reaper: net.Conn.Write would only say when all of it is written,
// and a client reading a large write slowly would look stuck. It returns how many
// bytes were written.
func (c *Conn) write(p *[]byte) (int, error) {
	if c.isTLS() {
		return c.writeTLS(p)
	}
	return c.writeFrom(p, 0)
}

// writeFrom is write of a plaintext connection's *p, of which sent bytes are
// already written.
func (c *Conn) writeFrom(p *[]byte, sent int) (int, error) {
	c.wbuf, c.wsent, c.werr = p, sent, 0
	c.writeAt.Store(mono.Now())
	err := c.rc.Write(c.writeFn)
	c.writeAt.Store(0)
	n := c.wsent
	c.wbuf = nil
	if err == nil && c.werr != 0 {
		err = c.werr
	}
	if err != nil {
		return n, fmt.Errorf("conn %d: write: %w", c.id, err)
	}
	return n, nil
}

// writeNow writes what the socket of a plaintext connection takes of *p without
// waiting for it; it returns how many bytes were written. Untimed: it never waits,
// so the reaper has nothing to cut.
func (c *Conn) writeNow(p *[]byte) (int, error) {
	c.wbuf, c.wsent, c.werr, c.wnowait = p, 0, 0, true
	err := c.rc.Write(c.writeFn)
	n := c.wsent
	c.wbuf, c.wnowait = nil, false
	if err == nil && c.werr != 0 {
		err = c.werr
	}
	if err != nil {
		return n, fmt.Errorf("conn %d: write: %w", c.id, err)
	}
	return n, nil
}

// writeRaw is the syscall.RawConn write callback: it writes what the kernel takes
// and, when the socket is full, records any progress this call made before the
// goroutine parks until the socket is writable again (or the reaper's past deadline
// cancels the wait).
func (c *Conn) writeRaw(fd uintptr) bool {
	buf, start := *c.wbuf, c.wsent
	for c.wsent < len(buf) {
		n, err := syscall.Write(int(fd), buf[c.wsent:])
		if n > 0 {
			c.wsent += n
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			if c.wnowait {
				return true
			}
			// Progress is recorded for a timed write only: a TLS transport also
			// writes handshake records and alerts, which no flush is timing.
			if c.wsent != start && c.writeAt.Load() != 0 {
				c.writeAt.Store(mono.Now())
			}
			return false
		default:
			c.werr = err.(syscall.Errno)
			return true
		}
	}
	return true
}

// frameEnd returns where the frame of out holding byte n-1 ends: n itself when the
// first n bytes of out end on a frame boundary. out holds whole frames, so it walks
// their headers; a malformed run (never queued) ends at len(out).
func frameEnd(out []byte, n int) int {
	off := 0
	for off < n {
		size := protocol.Needed(out[off:])
		if size == 0 {
			return len(out)
		}
		off += size
	}
	return min(off, len(out))
}

// stall is the reaper's verdict on a connection whose write has made no progress
// since writeAt (now - writeAt > timeout): the client is not reading. It cancels the
// write with a past deadline; the flusher then ends the connection (endStalled). A
// connection already closing for another reason (its ERROR queued behind what the
// client does not read) keeps that reason.
func (c *Conn) stall(now int64, timeout time.Duration) {
	c.wmu.Lock()
	// Re-checked under wmu: the write may have completed since the reaper looked.
	if wa := c.writeAt.Load(); c.stalled || !c.flushing || wa == 0 || now-wa <= int64(timeout) {
		c.wmu.Unlock()
		return
	}
	c.stalled = true
	if !c.closing {
		c.closing = true
		e := c.endLocked(ReasonSlowConsumer)
		e.reason, e.stallFor = ReasonSlowConsumer, timeout
	}
	pending := int(c.writing) // the write in progress, whatever part of it is written
	if c.out != nil {
		pending += len(*c.out)
	}
	reason := c.reasonLocked()
	c.releaseSlot()
	c.wakeReaderLocked()
	c.nc.SetWriteDeadline(aLongTimeAgo) // under wmu: endStalled's own deadline comes after it
	c.wmu.Unlock()
	c.m.log.Info("closing a connection whose writes made no progress", zap.Uint64("conn_id", c.id),
		zap.String("client_id", c.Info().ClientID), zap.String("remote", c.remote), zap.String("reason", string(reason)),
		zap.Duration("write_timeout", timeout), zap.Int("pending_bytes", pending))
}

// endStalled runs on the flusher once the reaper has cut its write; tail is the rest
// of the frame the cut write was in (nil when the cut fell between frames), at most
// one small server frame. The client can parse an ERROR only after whole frames, so
// tail and ERROR slow_consumer are tried together with a short deadline: they go out
// if the client reads now. Otherwise (or if the connection was already closing with
// its own ERROR) the socket is just closed.
func (c *Conn) endStalled(tail []byte) {
	c.wmu.Lock()
	timeout := time.Duration(0)
	if c.end != nil {
		timeout = c.end.stallFor
	}
	c.wmu.Unlock()
	if timeout == 0 {
		c.closeSocket()
		return
	}
	grace := stallErrorGrace
	if g := c.m.Settings().stallErrorGrace; g > 0 {
		grace = g
	}
	msg := fmt.Sprintf("slow consumer: no write progress for %s (limits.write_timeout): the client does not read", timeout)
	frame := protocol.AppendJSON(append([]byte(nil), tail...), protocol.TypeError, 0,
		&protocol.ErrorPayload{Code: protocol.CodeSlowConsumer, Message: msg})
	c.nc.SetWriteDeadline(time.Now().Add(grace))
	n, err := c.nc.Write(frame)
	c.bytesOut.Add(uint64(n))
	c.m.obs.BytesOut(n)
	if err != nil {
		c.closeSocket()
		return
	}
	c.wmu.Lock()
	c.endLocked(ReasonSlowConsumer).code = protocol.CodeSlowConsumer
	c.wmu.Unlock()
	c.framesOut.Add(1)
	c.m.obs.FramesOut(protocol.TypeError, 1)
	c.goodbye()
}

// finish runs once the final ERROR (and everything queued before it) is written.
// At the drain deadline the socket is closed at once: the time to leave is over.
// Otherwise the peer gets a goodbye, so that it reads the ERROR before the end.
func (c *Conn) finish(reason CloseReason) {
	if reason == ReasonDrain {
		c.closeSocket()
		return
	}
	c.goodbye()
}

// goodbye sends FIN after what was written, so the peer reads it and then
// end-of-stream, and gives the reader lingerAfterError to see the peer close: a
// socket closed with unread input sends a reset, which can destroy the last frame
// before the peer reads it.
func goodbye(nc net.Conn) {
	if tc, ok := nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(lingerAfterError))
}

// goodbye is goodbye(c.nc), which a parked reader is started to see.
func (c *Conn) goodbye() {
	goodbye(c.nc)
	c.wakeParked()
}
