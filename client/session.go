package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

const (
	// maxServerFrame caps what the client accepts from a server: server frames are
	// ACKs and small JSON control payloads, so a huge length is a broken peer.
	maxServerFrame = 1 << 20
	readBufSize    = 4 << 10
	// A write buffer that grew past this (a burst of large reports) is dropped after
	// the write rather than kept for the life of the connection. An upload's chunks
	// (1 MiB, a few in flight) fit under it: reallocated for each chunk, the buffer
	// cost a fresh zeroed allocation, its page faults and GC per MiB sent.
	maxKeptWriteBuf = 4 << 20
)

// session is one connection: a reader goroutine, a writer goroutine, and the
// reports in flight on it (the pending records whose sess points here).
//
// A session owns its socket, its buffers and its liveness readings; it never
// touches its owner's state. What the server says that matters to the owner (an
// ACK, a NACK, a GOAWAY) it reports as events, a read's worth at a time, and its
// end it reports once (sessionOwner).
type session struct {
	owner   sessionOwner
	wg      *sync.WaitGroup // the owner's: counts the reader and the writer
	nc      net.Conn
	welcome protocol.Welcome
	hb      time.Duration // heartbeat interval in force on this connection
	born    int64         // mono.Now() at the end of the handshake

	// The owner's bookkeeping about this connection, guarded by the owner's lock
	// (the Client's mu). The session itself never reads or writes it.
	inflight int  // reports sent here and not yet acked, nacked or moved elsewhere
	limit    int  // most reports in flight here: min(Options.MaxInFlight, WELCOME max_in_flight)
	goaway   bool // the server asked us to leave, or a newer connection replaced it
	retiring bool // we are closing it on purpose (handoff complete)
	// collecting is set while s's reader calls the done callbacks of a read's
	// ACKs (Client.callDoneOn): the REPORT frames queued for s meanwhile are
	// appended to batch, which the reader hands to endHold afterwards. Both are
	// guarded by the owner's lock.
	collecting bool
	batch      []byte
	// Set by the server's GOAWAY (the first one; a repeat is ignored).
	shutdown     bool  // reason shutdown: no successor to move to, reconnect with backoff
	hasDeadline  bool  // goawayEnd is set
	goawayEnd    int64 // mono.Now() of the deadline: receipt + deadline_ms (0 ms: at receipt)
	moveAt       int64 // mono.Now() at which to dial the successor: receipt + reconnect_after_ms
	handoffFails int   // failed attempts to open the successor

	lastSend   atomic.Int64 // mono.Now() at the end of the last write
	lastRecv   atomic.Int64 // mono.Now() of the last read that returned bytes
	writeStart atomic.Int64 // mono.Now() when the write in progress began; 0 = none
	progress   atomic.Bool  // an ACK or PONG arrived: this connection really works

	// Coalesced output: frames are appended to out under wmu and the writer takes
	// everything in one swap and one Write.
	wmu  sync.Mutex
	out  []byte
	kick chan struct{} // cap 1: "out is not empty"
	// While the owner calls done callbacks (which may queue reports with Go), the
	// writer is not woken: held is set, and owed records that a kick was skipped.
	// release kicks once, so one write carries the whole batch.
	held, owed bool // guarded by wmu
	// writing is set, under wmu, by whichever goroutine took out for a write, and
	// cleared once that write returned: the writer, or the reader writing its own
	// batch (release) through raw, without waiting (nil: TLS, or not unix). rspare
	// is the reader's spare output buffer.
	writing atomic.Bool
	raw     *rawWriter
	rspare  []byte
	// chunks are UPLOAD_CHUNK frames queued apart from out (queueChunk): each
	// write takes everything in out and one chunk, so a report queued behind an
	// upload waits for one chunk at most, not for the upload's whole window.
	// chunksQueued counts them; written counts those written, in queue order.
	chunks       []chunkFrame // guarded by wmu
	chunksQueued uint64       // guarded by wmu
	written      atomic.Uint64

	failOnce sync.Once
	err      error // why the session ended; read only after fail
	done     chan struct{}

	// Read side, owned by the handshake and then by the reader goroutine.
	rbuf []byte
	rlen int
	evs  []sessionEvent // the events of one read, reused
	// The reader's buffers for Client.callDoneOn, reused from one read to the next.
	batchSpare []byte
	callsSpare []doneCall
	// readRaw's callback, bound once (a method value per RawRead would allocate),
	// and why it ended the session.
	serve func(fd uintptr) bool
	rerr  error
}

// sessionOwner is what a session reports to (the Client). Both methods are called
// from the session's reader goroutine.
type sessionOwner interface {
	// sessionEvents acts on the events decoded from one read, in order. evs is
	// only valid during the call.
	sessionEvents(s *session, evs []sessionEvent)
	// sessionEnded is called once, after the socket is closed and the last events
	// were delivered; s.err says why it ended.
	sessionEnded(s *session)
}

// eventKind says what a sessionEvent reports.
type eventKind uint8

const (
	eventAcked  eventKind = iota + 1 // the server persisted reports seq..last
	eventNacked                      // the server refused report seq: nack says why
	eventGoaway                      // the server asked us to move: goaway says how soon
	eventUpload                      // an UPLOAD_STATE: upload says what
)

// sessionEvent is one thing the server said that its owner must act on.
type sessionEvent struct {
	kind   eventKind
	seq    uint64
	last   uint64         // eventAcked: the last seq acknowledged (seq itself for an ACK)
	nack   *protocol.Nack // by pointer: NACKs are rare, ACKs are not, and the slice is copied per ACK
	goaway *protocol.Goaway
	upload *protocol.UploadState
	// worked: an ACK or PONG had arrived on this connection before the GOAWAY,
	// so the connection was not one that says GOAWAY right after WELCOME.
	worked bool
}

func newSession(owner sessionOwner, wg *sync.WaitGroup, nc net.Conn) *session {
	s := &session{owner: owner, wg: wg, nc: nc, raw: newRawWriter(nc), kick: make(chan struct{}, 1), done: make(chan struct{}), rbuf: make([]byte, readBufSize)}
	s.serve = s.serveRaw
	return s
}

// connect opens a connection and runs the handshake, both bounded by DialTimeout.
// A refused handshake returns the server's *client.ServerError.
func (c *Client) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	nc, err := c.opts.Dialer(ctx, c.opts.Addr)
	if err != nil {
		return nil, err
	}
	if c.opts.TLS != nil {
		c.tlsr.beforeHandshake()
		tc := tls.Client(nc, c.opts.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("hawk: TLS handshake with %s: %w", c.opts.Addr, err)
		}
		if tc.ConnectionState().DidResume {
			c.stats.resumed.Add(1)
		}
		nc = tc
	}
	s := newSession(c, &c.wg, nc)
	if err := s.handshake(ctx, &c.opts); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// handshake sends HELLO and waits for WELCOME (or the server's ERROR), then fixes
// the heartbeat interval: the one in opts, else the server's, else the default.
func (s *session) handshake(ctx context.Context, opts *Options) error {
	if dl, ok := ctx.Deadline(); ok {
		s.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { s.nc.SetDeadline(time.Unix(1, 0)) })
	h := &protocol.Hello{ClientID: opts.ClientID, Token: opts.Token, ClientVersion: opts.ClientVersion}
	if !opts.PerReportAcks {
		h.Ack = protocol.AckModeRange
	}
	hello := protocol.AppendJSON(nil, protocol.TypeHello, 0, h)
	if _, err := s.nc.Write(hello); err != nil {
		stop()
		return handshakeErr(ctx, err)
	}
	var rerr error
	for {
		f, n, err := protocol.Decode(s.rbuf[:s.rlen], maxServerFrame)
		if err != nil {
			stop()
			return err
		}
		if n > 0 {
			switch f.Type {
			case protocol.TypeWelcome:
				err = protocol.ParseJSON(f, &s.welcome)
			case protocol.TypeError:
				ep := new(protocol.ErrorPayload)
				if err = protocol.ParseJSON(f, ep); err == nil {
					err = ep
				}
			default:
				err = fmt.Errorf("hawk: server answered HELLO with %s", f.Type)
			}
			// Anything after WELCOME (a GOAWAY, a PING) is left for the reader.
			s.rlen = copy(s.rbuf, s.rbuf[n:s.rlen])
			if err != nil {
				stop()
				return err
			}
			break
		}
		if rerr != nil {
			stop()
			return handshakeErr(ctx, rerr)
		}
		if need := protocol.Needed(s.rbuf[:s.rlen]); need > len(s.rbuf) {
			s.grow(need)
		}
		var m int
		m, rerr = s.nc.Read(s.rbuf[s.rlen:])
		s.rlen += m
	}
	if !stop() {
		return handshakeErr(ctx, context.Cause(ctx)) // the deadline may already be set in the past
	}
	s.nc.SetDeadline(time.Time{})
	s.hb = opts.HeartbeatInterval
	if s.hb == 0 {
		s.hb = time.Duration(s.welcome.HeartbeatIntervalMS) * time.Millisecond
	}
	if s.hb <= 0 {
		s.hb = DefaultHeartbeatInterval
	}
	s.limit = opts.MaxInFlight
	if m := s.welcome.MaxInFlight; m > 0 && m < s.limit {
		s.limit = m
	}
	now := mono.Now()
	s.born = now
	s.lastRecv.Store(now)
	s.lastSend.Store(now)
	return nil
}

func handshakeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("hawk: handshake: %w (%v)", ctx.Err(), err)
	}
	return fmt.Errorf("hawk: handshake: %w", err)
}

func (s *session) grow(need int) {
	b := make([]byte, need)
	copy(b, s.rbuf[:s.rlen])
	s.rbuf = b
}

// fail ends the session: the first error wins, and the reader and writer exit.
// Safe from any goroutine, also under the owner's lock, and from what the reader
// runs inside its read (readRaw): there the socket is not closed, since Close
// waits for the read to return, which would wait for fail's caller (the reader
// itself, or whoever holds the owner's lock the reader waits for). A past
// deadline wakes a reader or writer waiting on the socket instead, and the
// reader closes it on its way out.
func (s *session) fail(err error) {
	s.failOnce.Do(func() {
		s.err = err
		close(s.done)
		if s.raw != nil {
			s.nc.SetDeadline(time.Unix(1, 0))
		} else {
			s.nc.Close()
		}
	})
}

// queueFrame appends one frame to the pending output and wakes the writer.
func (s *session) queueFrame(t protocol.Type, seq uint64, payload []byte) {
	s.wmu.Lock()
	s.out = protocol.AppendFrame(s.out, t, seq, payload)
	s.kickUnlock()
}

// queueReports appends the REPORT frames of recs (in order) under one lock.
func (s *session) queueReports(recs []*pending) {
	s.wmu.Lock()
	for _, r := range recs {
		s.out = protocol.AppendFrame(s.out, protocol.TypeReport, r.seq, r.payload)
	}
	s.kickUnlock()
}

// chunkFrame is an UPLOAD_CHUNK frame whose data is written from where it is:
// frame[:at], data, frame[at:] (protocol.AppendChunkAround).
type chunkFrame struct {
	frame []byte
	at    int
	data  []byte
}

// queueChunk queues an UPLOAD_CHUNK frame whose data is written from where it
// is, not copied. It returns the count the session's written reaches once the
// frame is written: data must stay as it is until then.
func (s *session) queueChunk(id string, offset uint64, data []byte) uint64 {
	frame, at := protocol.AppendChunkAround(nil, id, offset, data)
	s.wmu.Lock()
	s.chunks = append(s.chunks, chunkFrame{frame, at, data})
	s.chunksQueued++
	n := s.chunksQueued
	s.kickUnlock()
	return n
}

// kickUnlock releases wmu after output was queued and wakes the writer, unless
// the reader is holding it back (then the reader wakes it). Caller holds wmu.
func (s *session) kickUnlock() {
	if s.held {
		s.owed = true
		s.wmu.Unlock()
		return
	}
	s.wmu.Unlock()
	s.signal()
}

// hold makes the writer wait until release: the owner calls it around a batch of
// done callbacks run on this session's reader.
func (s *session) hold() {
	s.wmu.Lock()
	s.held = true
	s.wmu.Unlock()
}

// release ends hold, queueing batch (REPORT frames the owner collected meanwhile)
// behind the output already queued, writes what it can, and returns an empty
// buffer for the owner's next batch: endHold, then flushHeld. An owner that
// collected the batch under its own lock calls endHold under that lock, so that
// a report queued after the batch never goes out before it.
func (s *session) release(batch []byte) (spare []byte) {
	direct, owed, spare := s.endHold(batch)
	if b := s.flushHeld(direct, owed); direct != nil {
		spare = b
	}
	return spare
}

// endHold ends hold. As usual nothing is queued or being written and batch
// (REPORT frames the owner collected meanwhile) is returned as direct, to be
// written from where it is by flushHeld, ahead of anything queued from now on
// (writing is set already). Otherwise batch is queued behind the output
// already queued (or becomes the output) and an emptied buffer comes back as
// spare; owed says that output is waiting for flushHeld.
func (s *session) endHold(batch []byte) (direct []byte, owed bool, spare []byte) {
	s.wmu.Lock()
	s.held = false
	owed = s.owed || len(batch) > 0
	s.owed = false
	if len(batch) > 0 && len(s.out) == 0 && s.raw != nil && !s.writing.Load() && s.chunksQueued == s.written.Load() {
		s.writing.Store(true)
		s.wmu.Unlock()
		return batch, owed, nil
	}
	if len(s.out) == 0 { // the batch becomes the output (TLS, or a write in progress)
		s.out, batch = batch, s.out
	} else {
		s.out = append(s.out, batch...)
	}
	s.wmu.Unlock()
	return nil, owed, keptBuf(batch)
}

// flushHeld writes what endHold left: direct, or else, if owed, the output
// queued meanwhile, as much as the socket takes without waiting, when no other
// write is in progress and no upload chunk waits (chunks keep their order
// through the writer alone); the writer is woken only for what is left. Waking
// it for every batch costs two goroutine switches, more than the write itself,
// and the reader has nothing to read before the server has the batch. Never
// waiting keeps the reader reading whatever the server does. It returns direct,
// emptied, for the owner's next batch.
func (s *session) flushHeld(direct []byte, owed bool) []byte {
	buf := direct
	if buf == nil {
		if !owed {
			return nil
		}
		s.wmu.Lock()
		if s.raw == nil || s.writing.Load() || len(s.out) == 0 || s.chunksQueued != s.written.Load() {
			s.wmu.Unlock()
			s.signal()
			return nil
		}
		s.writing.Store(true)
		buf = s.out
		s.out = s.rspare
		s.rspare = nil
		s.wmu.Unlock()
	}
	n, err := s.raw.writeNow(buf)
	if n > 0 {
		s.lastSend.Store(mono.Now())
	}
	s.wmu.Lock()
	s.writing.Store(false)
	if n < len(buf) { // the rest goes first, ahead of what was queued meanwhile
		rest := append(buf[:0], buf[n:]...)
		buf = s.out // copied behind the rest: free from here on
		s.out = append(rest, buf...)
	}
	if direct == nil {
		if cap(buf) <= maxKeptWriteBuf {
			s.rspare = buf[:0]
		}
		buf = nil
	}
	more := len(s.out) > 0 || len(s.chunks) > 0
	s.wmu.Unlock()
	if err != nil {
		s.fail(err)
	} else if more { // the socket's buffer was full, or others queued output meanwhile
		s.signal()
	}
	return keptBuf(buf)
}

// keptBuf is b emptied for reuse, or nil if it grew too large to keep.
func keptBuf(b []byte) []byte {
	if cap(b) > maxKeptWriteBuf {
		return nil
	}
	return b[:0]
}

// ping queues a PING, behind any output already pending: a PING is also due when
// the client streams but the server has been silent, and only its PONG proves the
// server alive then.
func (s *session) ping(seq uint64) {
	s.queueFrame(protocol.TypePing, seq, nil)
}

func (s *session) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// writeLoop writes everything queued since its last write in one Write, and
// at most one upload chunk after it (writev: its data is not copied). While a
// Write is in progress, new frames pile up in out and go together next time. The
// output buffer is double-buffered: out and the writer's spare are swapped, so
// steady state allocates nothing.
func (s *session) writeLoop() {
	defer s.wg.Done()
	var spare []byte
	var pend []chunkFrame // chunks taken from s.chunks, not written yet
	var vec net.Buffers
	var written uint64
	for {
		if len(pend) == 0 {
			select {
			case <-s.kick:
			case <-s.done:
				return
			}
			// Let the goroutines made runnable by the same burst of ACKs queue their
			// reports first: one write then carries them all. It costs nothing when
			// nothing else is runnable, and needs no timer.
			runtime.Gosched()
		} else if s.isDone() {
			return
		}
		s.wmu.Lock()
		if s.writing.Load() {
			// The reader is writing its batch; it kicks again if more is queued
			// when it is done.
			s.wmu.Unlock()
			continue
		}
		s.writing.Store(true)
		buf := s.out
		s.out = spare
		pend = append(pend, s.chunks...)
		clear(s.chunks)
		s.chunks = s.chunks[:0]
		s.wmu.Unlock()
		spare = nil
		if len(buf) == 0 && len(pend) == 0 {
			s.writing.Store(false)
			spare = buf[:0]
			continue
		}
		vec = vec[:0]
		if len(buf) > 0 {
			vec = append(vec, buf)
		}
		if len(pend) > 0 {
			c := pend[0]
			vec = append(vec, c.frame[:c.at], c.data, c.frame[c.at:])
		}
		s.writeStart.Store(mono.Now())
		var err error
		if len(vec) == 1 {
			_, err = s.nc.Write(buf)
		} else {
			send := vec                 // WriteTo consumes its receiver
			_, err = send.WriteTo(s.nc) // writev on a TCP connection
		}
		clear(vec)
		s.writeStart.Store(0)
		s.lastSend.Store(mono.Now())
		s.writing.Store(false)
		if err != nil {
			s.fail(err)
			return
		}
		if len(pend) > 0 {
			pend[0] = chunkFrame{}
			pend = pend[1:]
			written++
			s.written.Store(written)
		}
		if cap(buf) <= maxKeptWriteBuf {
			spare = buf[:0]
		}
	}
}

// isDone reports whether the session has ended.
func (s *session) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// readLoop decodes server frames in place from one reused buffer, hands a whole
// read's worth of events to the owner at once, and ends the session on any error.
func (s *session) readLoop() {
	defer s.wg.Done()
	var err error
	if s.raw != nil {
		err = s.readRaw()
	} else {
		err = s.readConn()
	}
	s.fail(err)
	s.nc.Close() // fail leaves a raw socket to us (see fail); a second Close is harmless
	s.owner.sessionEnded(s)
}

// readConn is readLoop's loop through the net.Conn (TLS, or a socket that is not
// one of the platform's).
func (s *session) readConn() error {
	for {
		if err := s.process(); err != nil {
			return err
		}
		s.fitReadBuf()
		n, rerr := s.nc.Read(s.rbuf[s.rlen:])
		if n > 0 {
			s.rlen += n
			s.lastRecv.Store(mono.Now())
		}
		if rerr != nil {
			if n > 0 {
				s.process() // ACKs that arrived with the EOF still count
			}
			return rerr
		}
	}
}

// fitReadBuf grows the read buffer to hold the partial frame it starts with, or
// shrinks it back once a one-off large frame is done with.
func (s *session) fitReadBuf() {
	if need := protocol.Needed(s.rbuf[:s.rlen]); need > len(s.rbuf) {
		s.grow(need)
	} else if s.rlen == 0 && len(s.rbuf) > readBufSize {
		s.rbuf = make([]byte, readBufSize)
	}
}

// process handles every whole frame in the read buffer and keeps a partial one.
// The events of the frames before an error are still delivered.
func (s *session) process() error {
	buf := s.rbuf[:s.rlen]
	off := 0
	evs := s.evs[:0]
	var err error
	for off < len(buf) {
		f, n, derr := protocol.Decode(buf[off:], maxServerFrame)
		if derr != nil {
			err = derr
			break
		}
		if n == 0 {
			break
		}
		off += n
		if evs, err = s.handle(f, evs); err != nil {
			break
		}
	}
	if len(evs) > 0 {
		s.owner.sessionEvents(s, evs)
		clear(evs) // keep no NACK message or GOAWAY alive until the next read
	}
	s.evs = evs[:0]
	if off > 0 {
		s.rlen = copy(s.rbuf, buf[off:])
	}
	return err
}

// handle acts on one frame from the server: liveness and PINGs here, the rest
// appended to evs for the owner. An ERROR from the server ends the session.
func (s *session) handle(f protocol.Frame, evs []sessionEvent) ([]sessionEvent, error) {
	switch f.Type {
	case protocol.TypeAck:
		s.progress.Store(true)
		evs = append(evs, sessionEvent{kind: eventAcked, seq: f.Seq, last: f.Seq})
	case protocol.TypeAckRange:
		r, err := protocol.ParseAckRanges(f.Payload)
		if err != nil {
			return evs, fmt.Errorf("hawk: %w", err)
		}
		s.progress.Store(true)
		for i := range r.Len() {
			first, last := r.At(i)
			evs = append(evs, sessionEvent{kind: eventAcked, seq: first, last: last})
		}
	case protocol.TypeNack:
		nk := new(protocol.Nack)
		if err := protocol.ParseJSON(f, nk); err != nil {
			return evs, fmt.Errorf("hawk: NACK for seq %d: %w", f.Seq, err)
		}
		evs = append(evs, sessionEvent{kind: eventNacked, seq: f.Seq, nack: nk})
	case protocol.TypeUploadState:
		st := new(protocol.UploadState)
		if err := protocol.ParseJSON(f, st); err != nil {
			return evs, fmt.Errorf("hawk: UPLOAD_STATE: %w", err)
		}
		evs = append(evs, sessionEvent{kind: eventUpload, upload: st})
	case protocol.TypePing:
		s.queueFrame(protocol.TypePong, f.Seq, nil)
	case protocol.TypePong:
		s.progress.Store(true)
	case protocol.TypeGoaway:
		g := new(protocol.Goaway)
		if err := protocol.ParseJSON(f, g); err != nil {
			return evs, fmt.Errorf("hawk: GOAWAY: %w", err)
		}
		evs = append(evs, sessionEvent{kind: eventGoaway, goaway: g, worked: s.progress.Load()})
	case protocol.TypeError:
		ep := new(protocol.ErrorPayload)
		if err := protocol.ParseJSON(f, ep); err != nil {
			return evs, fmt.Errorf("hawk: server ERROR: %w", err)
		}
		return evs, ep
	default:
		return evs, &protocol.DecodeError{Code: protocol.CodeProtocol, Msg: fmt.Sprintf("server sent %s on an established connection", f.Type)}
	}
	return evs, nil
}
