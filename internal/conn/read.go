package conn

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// readRaw is the syscall.RawConn read callback. It takes a buffer from the pool only
// when the socket has bytes, and gives it back before the goroutine parks if no
// partial frame is held: waiting for an idle agent costs no buffer.
//
// An active plaintext connection's reads are served here, inside RawRead (c.born
// set): after a read that did not fill the buffer the socket was empty, so the
// goroutine parks without the read that would only say EAGAIN (a system call per
// wake-up, a few per cent of the server's CPU at 8 reports a read). That is
// sound only inside one RawRead: it resets the poller's readiness on entry, which
// could sleep through data that arrived since the last read, while between two
// calls of this callback readiness is kept, and data that arrives after a read
// makes the poller ready again (edge-triggered, as every arrival is).
//
// What runs here holds the descriptor's read lock: it must not read through
// c.rc or c.nc, nor close the socket (Close waits for the lock), which is why
// flushHeld leaves a failed write to another goroutine.
func (c *Conn) readRaw(fd uintptr) bool {
	for {
		if c.rbuf == nil {
			c.rbuf = getReadBuf()
		}
		space := len(*c.rbuf) - c.rlen
		n, err := syscall.Read(int(fd), (*c.rbuf)[c.rlen:])
		if err == syscall.EAGAIN {
			c.releaseReadBuf()
			return c.leaveQuiet()
		}
		if err == syscall.EINTR {
			return false // poll again; readability is level-checked by the next read
		}
		c.rn, c.rerr = int32(n), 0
		if err != nil {
			c.rerr = int32(err.(syscall.Errno))
			return true
		}
		if c.born == 0 || n == 0 || c.born&parkWhenQuiet != 0 {
			// Served by serveFrom. A reader woken to park again as soon as the
			// socket is empty (an agent's heartbeat) saves no read by serving
			// here, and serving there is five frames shallower: enough that a
			// PING and its PONG fit the 2 KiB a fresh goroutine starts with,
			// instead of copying the stack to grow it at every heartbeat.
			return true
		}
		if _, ok := c.serveRead(n); !ok || c.leaveRaw() {
			c.rn = -1
			return true
		}
		if n < space {
			c.releaseReadBuf()
			return c.leaveQuiet() // or wait for the next bytes
		}
	}
}

// leaveQuiet reports, when the socket is empty, whether the reader returns to
// serveFrom to park the connection (parkWhenQuiet) rather than wait here.
func (c *Conn) leaveQuiet() bool {
	if c.born&parkWhenQuiet == 0 || c.rlen != 0 {
		return false // a partial frame waits here for its rest
	}
	c.rn = -1
	return true
}

// releaseReadBuf gives the read buffer back to the pool if it holds no input.
func (c *Conn) releaseReadBuf() {
	if c.rlen == 0 {
		putReadBuf(c.rbuf)
		c.rbuf = nil
	}
}

// leaveRaw reports whether the reader must return from readRaw to serveFrom, which
// waits for output, hands the connection over, starts a fresh reader or ends it.
func (c *Conn) leaveRaw() bool {
	return c.outFull.Load() || c.handoffAsked() || c.lastSeen.Load()-c.born >= respawnAfter
}

// read fills the read buffer with whatever the socket has, waiting if it has nothing.
// It returns 0 and no error when readRaw served the reads itself.
func (c *Conn) read() (int, error) {
	if c.isTLS() {
		return c.readTLS()
	}
	if err := c.rc.Read(c.readFn); err != nil {
		return 0, err
	}
	if c.rerr != 0 {
		return 0, syscall.Errno(c.rerr)
	}
	switch c.rn {
	case 0:
		return 0, io.EOF
	case -1:
		return 0, nil
	}
	return int(c.rn), nil
}

// batch is what one read turns into: the reports for the destination, and counts of
// the frames for metrics. It is pooled, not kept per connection, so an idle
// connection holds none.
type batch struct {
	ingest.Batch
	recv           time.Time // when the read arrived: its reports' Received
	pings, reports int
	// unanswered is what the client had in flight when this read's first REPORT was
	// decoded (reports read before this read, less those answered).
	unanswered uint64
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

func getBatch() *batch { return batchPool.Get().(*batch) }

func putBatch(b *batch) {
	b.Reset() // drops buffers grown by a burst of huge reports
	b.pings, b.reports, b.unanswered = 0, 0, 0
	batchPool.Put(b)
}

// serve is the connection's goroutine: read, decode in place, hand reports to the
// spool, repeat. It tears the connection down when it returns.
//
// The handshake (JSON decoding and encoding, logging) grows the goroutine's stack
// to several KiB, and the runtime only shrinks stacks at GC, by halves. An agent
// then idles for hours in the same goroutine, so once the handshake is done the
// loop continues on a fresh goroutine whose stack fits the idle read path: at
// 15,000 connections that is the difference between ~10 KiB and ~6 KiB each.
func (c *Conn) serve(handshaking bool) { c.serveFrom(handshaking, mono.Now(), false) }

// serveFrom is serve on a goroutine that started at born (mono); quiet: it parks
// the connection as soon as the socket is empty (serveWoken).
func (c *Conn) serveFrom(handshaking bool, born int64, quiet bool) {
	born = readerBorn(born, quiet)
	if handshaking && c.isTLS() && !c.tlsHandshake() {
		return
	}
	c.born = 0
	if !handshaking && !c.isTLS() {
		c.born = born
	}
	woke := int64(0) // when this goroutine last read
	for {
		if c.outFull.Load() {
			// The client is not reading what it is sent: stop reading what it sends
			// until it does, so that TCP pushes back on it (see maxPendingOut).
			c.waitOutput()
		}
		if woke-born >= respawnAfter && !handshaking && c.tlsIdle() {
			spawn(c, (*Conn).serveIdleTLS) // waits on a fresh stack (tlsidle.go)
			return
		}
		if !handshaking && !c.isTLS() && woke != 0 && (woke-born >= respawnAfter || born&parkWhenQuiet != 0) {
			switch {
			case c.m.idle == nil:
				if c.plainIdle() {
					spawn(c, (*Conn).serveIdlePlain) // waits on a fresh stack (plainidle.go)
					return
				}
			case c.parkable() && c.park():
				return // parked: no goroutine until it has bytes (plainidle.go)
			default:
				// Not parked (input or an upload held, the server needs the reader,
				// or the poller refused the socket): wait on the socket, and try
				// again after another respawnAfter.
				born = readerBorn(mono.Now(), false)
				c.born = born
			}
		}
		n, err := c.read()
		if err != nil {
			if c.handoffAsked() && errors.Is(err, os.ErrDeadlineExceeded) {
				// The handoff stopped the reader with a past deadline (handoff.go).
				if c.quiesce() {
					return // moved to the new process, or lost with it: torn down
				}
				continue
			}
			c.closeNow(ReasonClient)
			c.teardown()
			return
		}
		if n > 0 {
			if served, _ := c.serveRead(n); served && handshaking && c.state.Load() == stateActive {
				c.serveAnew() // read side (rbuf, rlen) moves with it
				return
			}
		}
		woke = c.lastSeen.Load()
	}
}

// serveRead serves a read of n bytes into the read buffer: decodes its frames, hands
// the reports to the destination and writes what their work queued. served is false
// when the connection was already closing (the bytes are dropped); ok is false when
// it is closing, already or since this read.
func (c *Conn) serveRead(n int) (served, ok bool) {
	if c.holdOutput() {
		// An ERROR is on its way out. Keep reading (and dropping) what the peer
		// still sends: closing a socket with unread input makes the kernel send a
		// reset, which can destroy the ERROR before the peer reads it. The
		// flusher bounds this with a read deadline once the ERROR is written.
		c.dropInput()
		return false, false
	}
	c.rlen += n
	now := mono.Now()
	c.lastSeen.Store(now)
	c.bytesIn.Add(uint64(n))
	c.m.obs.BytesIn(n)

	b := getBatch()
	b.recv = time.Now()
	ok = c.parse(b, now)
	if b.Len() > 0 {
		c.m.dest.Submit(&b.Batch, c)
		if c.submitWaited {
			c.submitWaited = false
			c.unpause()
		}
	}
	c.reportsRead += uint64(b.reports)
	c.account(b)
	putBatch(b)
	c.flushHeld()
	if !ok {
		c.dropInput()
	}
	return true, ok
}

func (c *Conn) account(b *batch) {
	total := b.pings + b.reports
	if total == 0 {
		return
	}
	c.framesIn.Add(uint64(total))
	if b.reports > 0 {
		c.m.obs.FramesIn(protocol.TypeReport, b.reports)
	}
	if b.pings > 0 {
		c.m.obs.FramesIn(protocol.TypePing, b.pings)
	}
}

// parse decodes every whole frame in the read buffer, which the read at now (mono)
// filled. It returns false when the connection must end (an ERROR has been queued).
func (c *Conn) parse(b *batch, now int64) bool {
	buf := (*c.rbuf)[:c.rlen]
	off := 0
	limit := int(c.maxFrame)
	if c.state.Load() == stateHandshake {
		limit = maxHelloSize
	}
	for off < len(buf) {
		f, n, err := protocol.Decode(buf[off:], limit)
		if err != nil {
			c.failDecode(err)
			return false
		}
		if n == 0 {
			break
		}
		off += n
		if !c.handle(&f, b) {
			return false
		}
		if c.state.Load() == stateHandshake {
			continue
		}
		limit = int(c.maxFrame)
	}
	rest := len(buf) - off
	switch {
	case rest == 0:
		c.rlen = 0
		// Keep the buffer for the next read; readRaw returns it to the pool if that
		// read finds the socket empty.
	case off > 0:
		copy(*c.rbuf, buf[off:])
		c.rlen = rest
	}
	if need := protocol.Needed((*c.rbuf)[:c.rlen]); need > len(*c.rbuf) && c.rlen == len(*c.rbuf) && !c.readChunkDirect(need) {
		c.growReadBuf(need)
	}
	// A grown buffer is kept while the socket has bytes (an upload's chunks come
	// back to back: growing it again for each would copy each chunk twice more);
	// the read that finds the socket empty lets it go, as it does a pooled one.
	c.trackPartial(off > 0, now)
	return true
}

// trackPartial tells the reaper about the partial frame the reader now holds (see
// frameStart). Its clock starts with the read that brought its first byte: this one
// (at now), unless no frame was completed (done == false) and a partial frame was
// already held, which then is the same frame. Only the reader stores frameStart (and
// waitOutput, on the reader too), so loading it is exact; the atomics are stored only
// while a partial frame is held, so whole-frame reads cost one load.
func (c *Conn) trackPartial(done bool, now int64) {
	held := c.frameStart.Load() != 0
	if c.rlen == 0 {
		if held {
			c.frameStart.Store(0)
		}
		return
	}
	if done || !held {
		c.frameStart.Store(now)
	}
	buf := (*c.rbuf)[:c.rlen]
	c.frameHave.Store(uint64(len(buf))<<32 | uint64(uint32(protocol.Needed(buf))))
}

// dropInput forgets the unparsed input of a connection that is closing, and its
// partial frame: the frame timeout has nothing left to enforce.
func (c *Conn) dropInput() {
	c.rlen = 0
	if c.frameStart.Load() != 0 {
		c.frameStart.Store(0)
	}
}

// handle acts on one frame. It returns false when the connection must end.
func (c *Conn) handle(f *protocol.Frame, b *batch) bool {
	if c.state.Load() == stateHandshake {
		if f.Type != protocol.TypeHello {
			c.failNotHello(f.Type)
			return false
		}
		return c.handshake(*f)
	}
	switch f.Type {
	case protocol.TypeReport:
		// Flow control, as MQTT 5's Receive Maximum: one atomic load per read, when
		// its first REPORT arrives. answered is counted before an ACK is queued, so
		// this count is never above what the client itself has in flight.
		if b.reports == 0 {
			b.unanswered = c.reportsRead - c.answered.Load()
		}
		if n := b.unanswered + uint64(b.reports); n >= uint64(c.maxInFlight) {
			// The reports before this one in the read are persisted (serve submits
			// them) but, the ERROR being queued first, not answered: the client
			// resends them, as after any ERROR (PROTOCOL.md 6.2).
			c.failInFlight(n + 1)
			return false
		}
		if c.storeReport(f.Seq) {
			c.addReport(b, f)
		}
		b.reports++
	case protocol.TypePing:
		c.send(protocol.TypePong, f.Seq, nil)
		b.pings++
		if b.reports == 0 {
			c.releaseDedup()
		}
	case protocol.TypePong:
		// liveness only; lastSeen is already updated
	case protocol.TypeHello:
		c.fail(ReasonProtocol, protocol.CodeProtocol, "second HELLO on an established connection")
		return false
	case protocol.TypeUploadOpen, protocol.TypeUploadChunk, protocol.TypeUploadCommit:
		return c.upload(*f)
	default:
		c.failServerFrame(f.Type)
		return false
	}
	return true
}

// addReport adds a REPORT to the read's batch. Out of handle, with the record it
// builds, for the same reason as the failures below.
//
//go:noinline
func (c *Conn) addReport(b *batch, f *protocol.Frame) {
	b.Add(&ingest.Record{ClientID: c.clientID, Seq: f.Seq, ConnID: c.id, Received: b.recv, Payload: f.Payload})
}

// The failures of parse and handle are built out of line: their arguments would
// otherwise sit in those frames, on every reader's stack. A heartbeat's reader
// starts on the smallest stack (2 KiB), which a PING's path and its PONG's fit
// only with those frames small; otherwise the runtime grows it, a copy of the
// stack, at every heartbeat.

//go:noinline
func (c *Conn) failDecode(err error) {
	var de *protocol.DecodeError
	if errors.As(err, &de) {
		c.fail(ReasonProtocol, de.Code, de.Error())
	} else {
		c.fail(ReasonProtocol, protocol.CodeProtocol, err.Error())
	}
}

//go:noinline
func (c *Conn) failNotHello(t protocol.Type) {
	c.fail(ReasonHandshake, protocol.CodeProtocol, fmt.Sprintf("expected HELLO as the first frame, got %s", t))
}

//go:noinline
func (c *Conn) failInFlight(n uint64) {
	c.fail(ReasonProtocol, protocol.CodeTooManyInFlight, fmt.Sprintf("%d reports unanswered, max_in_flight is %d", n, c.maxInFlight))
}

//go:noinline
func (c *Conn) failServerFrame(t protocol.Type) {
	c.fail(ReasonProtocol, protocol.CodeProtocol, fmt.Sprintf("%s is a server-to-client frame; a client must not send it", t))
}

// growReadBuf grows the read buffer, which the bytes of a frame larger than it
// have filled, with the bytes that arrived (doubling, up to the frame's size of
// need), never to the size a header merely announces, so a header alone pins no
// large buffer.
//
//go:noinline
func (c *Conn) growReadBuf(need int) {
	big := make([]byte, min(need, 2*len(*c.rbuf)))
	copy(big, (*c.rbuf)[:c.rlen])
	putReadBuf(c.rbuf)
	c.rbuf = &big
}

// logClosed writes teardown's line, which teardown asks for only at a level the
// log writes: teardown runs on the reader of every connection a handoff moves,
// most of them idle ones whose reader started on the smallest stack (2 KiB), and
// the line's fields (nearly 1 KiB) or zap's Check (over 1 KiB) would make the
// runtime grow it, a copy of the stack, for every connection moved.
//
//go:noinline
func (c *Conn) logClosed(level zapcore.Level, reason CloseReason, code protocol.Code) {
	ce := c.m.log.Check(level, "connection closed")
	if ce == nil {
		return
	}
	ce.Write(zap.Uint64("conn_id", c.id), zap.String("client_id", c.Info().ClientID), zap.String("remote", c.remote),
		zap.String("reason", string(reason)), zap.String("code", string(code)),
		zap.Uint64("frames_in", c.framesIn.Load()), zap.Uint64("frames_out", c.framesOut.Load()))
}

const maxClientIDLen = 256

func validClientID(id string) error {
	if id == "" {
		return errors.New("client_id is empty")
	}
	if len(id) > maxClientIDLen {
		return fmt.Errorf("client_id is %d bytes, the limit is %d", len(id), maxClientIDLen)
	}
	// UTF-8 validity is ParseHello's: it checks the raw payload before decoding.
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errors.New("client_id contains a control character")
		}
	}
	return nil
}

func (c *Conn) handshake(f protocol.Frame) bool {
	h, err := protocol.ParseHello(f.Payload)
	if err != nil {
		c.m.handshakeFailed(c, "bad HELLO payload")
		c.fail(ReasonHandshake, protocol.CodeBadPayload, err.Error())
		return false
	}
	if err := validClientID(h.ClientID); err != nil {
		c.m.handshakeFailed(c, err.Error())
		c.fail(ReasonHandshake, protocol.CodeBadPayload, "HELLO: "+err.Error())
		return false
	}
	s := c.m.Settings()
	// Both checks come before anything names the client: a refused HELLO replaces
	// no connection, opens no dedup window and writes no record.
	if c.isTLS() && !c.checkCertID(h.ClientID) {
		return false
	}
	if !c.authorize(s, h.Token, h.ClientID) {
		return false
	}
	c.clientID, c.token = h.ClientID, h.Token
	// Set before the connection is active; Committed reads it only for reports,
	// which are read after this.
	c.ackRange = h.Ack == protocol.AckModeRange
	c.attachDedup()
	if !c.m.reg.bind(c) {
		return false // closed meanwhile
	}
	c.state.Store(stateActive)
	c.send(protocol.TypeWelcome, 0, &protocol.Welcome{
		ServerID:            s.ServerID,
		ServerVersion:       s.Version,
		ConnID:              c.id,
		HeartbeatIntervalMS: s.HeartbeatInterval.Milliseconds(),
		MaxFrameSize:        int(c.maxFrame),
		MaxInFlight:         int(c.maxInFlight),
		MaxUploadInFlight:   c.m.uploadInFlight,
		Ack:                 c.ackMode(),
	})
	c.framesIn.Add(1)
	c.m.obs.FramesIn(protocol.TypeHello, 1)
	c.m.log.Debug("handshake complete", zap.Uint64("conn_id", c.id), zap.String("client_id", h.ClientID),
		zap.String("remote", c.remote), zap.String("client_version", h.ClientVersion))
	if c.m.draining.Load() {
		c.m.sendGoaway(c)
	} else if c.isTLS() {
		c.armExpiry()
	}
	return true
}

// teardown runs once, when the reader has stopped.
func (c *Conn) teardown() {
	c.nc.Close()
	c.releaseSlot()
	c.wmu.Lock()
	c.closing = true
	e := c.endLocked(ReasonClient)
	reason, code := e.reason, e.code
	c.wmu.Unlock()
	c.handoffClosed()
	handshaken := c.state.Swap(stateClosed) == stateActive
	putReadBuf(c.rbuf)
	c.rbuf = nil
	if c.isTLS() {
		c.m.forgetTLS(c)
	}
	c.m.reg.remove(c)
	c.detachDedup()
	c.closeUploads()
	c.m.obs.Closed(reason, handshaken)
	// A peer leaving, or moving on during a drain, is routine: debug. Anything the
	// server decided (timeouts, protocol errors, revocation) is worth a line at info.
	level := zap.InfoLevel
	if reason == ReasonClient || reason == ReasonDrain || reason == ReasonShutdown || reason == ReasonHandoff {
		level = zap.DebugLevel
	}
	if c.m.log.Core().Enabled(level) {
		c.logClosed(level, reason, code)
	}
	c.wmu.Lock()
	if c.done == nil {
		c.done = closedChan // for whoever asks from now on
	} else {
		close(c.done)
	}
	c.wmu.Unlock()
	c.m.live.Done()
}
