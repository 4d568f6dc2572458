package conn

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/connset"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Connection states. A connection moves forward only.
const (
	stateHandshake int32 = iota
	stateActive
	stateClosed
)

// Conn is one accepted connection. Its reader goroutine owns the read side; the write
// side is shared under wmu by the reader (PONG, WELCOME), the spool committer (ACK,
// NACK) and the drain (GOAWAY), and drained by a flusher goroutine that exists only
// while there is something to write.
type Conn struct {
	id     uint64
	m      *Manager
	nc     net.Conn
	rc     syscall.RawConn
	remote string
	since  int64 // time.Now().UnixNano() at connect (for an adopted connection, its first process's)

	// What the reaper reads on every pass is kept together (offsets 72..112, within
	// one cache line of a 384-byte object), so that a pass over 100,000 connections
	// touches one line of each. BenchmarkReap measured the object's first line as
	// slower for it.
	state atomic.Int32
	// slot is true while c counts against limits.max_conns: from accept until the
	// server decides to close it (an ERROR queued, or the socket closed), not until its
	// teardown ends, which a lingering ERROR can delay by seconds.
	slot     atomic.Bool
	lastSeen atomic.Int64 // mono.Now() of the last read that returned bytes
	// writeAt is mono.Now() when the in-progress write last made progress (it began, or
	// the kernel took some of its bytes), 0 when no write is in progress: the reaper
	// closes a connection whose write has made no progress for the write timeout, so
	// no write deadline (a runtime timer) is armed per write, and a client that reads
	// slowly is not cut while it reads.
	writeAt atomic.Int64
	// frameStart is mono.Now() of the read that brought the first byte of the partial
	// frame the reader holds, 0 when it holds none; frameHave packs how many of that
	// frame's bytes have arrived (high 32 bits) and its size (low 32 bits; 0 while the
	// header is incomplete). The reaper closes a connection whose frame stays
	// incomplete past the frame timeout, however many bytes trickle in.
	frameStart atomic.Int64
	accepted   int64 // mono.Now() at accept

	// Copied at accept, as announced in WELCOME; a reload applies to new connections only.
	maxFrame    int32
	maxInFlight int32

	frameHave atomic.Uint64 // see frameStart
	// answered counts the REPORTs Committed has answered (or dropped, the connection
	// closing). The reader compares it with reportsRead once per read: the difference
	// is what the client has in flight.
	answered atomic.Uint64
	// outFull is set by a producer whose output took the pending output past
	// maxPendingOut, and cleared by the flusher once it is down to resumeOutBelow: the
	// reader does not read while it is set. paused is true while the reader waits on
	// it: the client's silence is then the server's doing, so the reaper applies no
	// heartbeat or frame timeout (the write timeout still applies).
	outFull atomic.Bool
	paused  atomic.Bool
	// goawayAt is mono.Now() when GOAWAY was queued (0: not told); the reaper cuts the
	// connection at goawayAt + the drain timeout.
	goawayAt atomic.Int64

	// Set once by the reader during the handshake, before state becomes active;
	// read by others only after loading state.
	clientID string
	token    string
	dd       *dedup.Client // the client's dedup window; nil when dedup is off

	framesIn, framesOut, bytesIn, bytesOut atomic.Uint64

	// read side, owned by the reader goroutine
	rbuf   *[]byte               // nil while idle
	rlen   int                   // bytes of rbuf holding unparsed input
	rn     int32                 // result of the last raw read; -1: served in readRaw
	rerr   int32                 // its errno, 0 if none
	readFn func(fd uintptr) bool // c.readRaw, bound once so waiting allocates nothing
	// born is mono.Now() when the reader goroutine serving the active connection's
	// plaintext reads started, 0 while none does (a handshake, TLS): then readRaw
	// serves them itself.
	born int64
	// reportsRead counts the REPORTs read.
	reportsRead uint64

	// the write in progress (see write), owned by whoever set flushing: a flusher,
	// or the reader in flushHeld
	wbuf    *[]byte
	wsent   int                   // bytes of wbuf written
	werr    syscall.Errno         // the write's error, 0 if none
	writeFn func(fd uintptr) bool // c.writeRaw, bound once

	// write side
	wmu     sync.Mutex
	out     *[]byte // pending output, nil when none
	writing int32   // bytes handed to the flusher's write in progress, 0 when none
	// held: the reader is between the start of a read's work and its own flush of
	// what that work queued (holdOutput, flushHeld); no flusher is started meanwhile.
	held bool
	// wnowait: the write in progress is the reader's, which must not wait for the
	// socket (flusher-owned, like wbuf).
	wnowait  bool
	flushing bool
	closing  bool // an ERROR is queued or the socket is closed: queue nothing more
	// stalled: the reaper cut a write that made no progress for the write timeout; the
	// flusher ends the connection (see endStalled), telling the client ERROR
	// slow_consumer if end.stallFor (the write timeout) is set, which it is unless the
	// connection was already closing.
	stalled bool
	// ackRange: the client asked for range acknowledgements in its HELLO (set before
	// the connection is active, never changed); ackAt is the offset in out of the
	// ACK_RANGE frame the next answers may extend, -1 when none (ack.go). Kept with
	// the bools above in one word.
	ackRange bool
	// polled: the socket is registered in the idle poller's epoll instance
	// (idlePoller.register, on the reader), so a park re-arms it rather than adds it.
	polled bool
	// submitWaited: the reader's Submit waited for room in the destination
	// (SubmitWaits), with the reader paused; on the reader only.
	submitWaited bool
	ackAt        int32
	// resume, while the reader waits for output to drain, is closed to wake it: by the
	// flusher once output is below resumeOutBelow, or by whoever closes the connection.
	resume chan struct{}
	// end says why the connection ends, nil until it does (ending.go): a live
	// connection does not carry its close reason, ERROR code and stall timeout.
	end            *ending
	connset.Member // its place in the registry
	// done is closed once the connection is torn down; made by the first who asks
	// (Done), so that a connection nobody waits for holds no channel. Under wmu.
	done chan struct{}

	// Handoff to a new process (handoff.go): where this connection is in it, nil
	// until a handoff asks it (a pointer: Conn stays in its size class).
	ho atomic.Pointer[handoff.Point]

	// up is owned by the reader: the uploads open on this connection (upload.go),
	// nil until the first. Rarely used parts are pointers, which keeps a Conn at
	// 384 bytes, a multiple of 64 (layout_test.go).
	up *uploads
}

// Info is a point-in-time view of a connection for the admin API.
type Info struct {
	ID        uint64    `json:"id"`
	ClientID  string    `json:"client_id"`
	Remote    string    `json:"remote"`
	Since     time.Time `json:"connected_since"`
	LastSeen  time.Time `json:"last_seen"`
	State     string    `json:"state"`
	Draining  bool      `json:"draining"`
	FramesIn  uint64    `json:"frames_in"`
	FramesOut uint64    `json:"frames_out"`
	BytesIn   uint64    `json:"bytes_in"`
	BytesOut  uint64    `json:"bytes_out"`
	// Listener and Format name a legacy listener and its wire format
	// (internal/legacy); both are absent for a native connection.
	Listener string `json:"listener,omitempty"`
	Format   string `json:"format,omitempty"`
}

// Info returns a snapshot of c.
func (c *Conn) Info() Info {
	st := c.state.Load()
	in := Info{
		ID: c.id, Remote: c.remote, Since: time.Unix(0, c.since),
		LastSeen:  mono.Time(c.lastSeen.Load()),
		State:     [...]string{"handshake", "active", "closed"}[st],
		Draining:  c.goawayAt.Load() != 0,
		FramesIn:  c.framesIn.Load(),
		FramesOut: c.framesOut.Load(),
		BytesIn:   c.bytesIn.Load(),
		BytesOut:  c.bytesOut.Load(),
	}
	if st >= stateActive {
		in.ClientID = c.clientID
	}
	return in
}

// fail queues an ERROR frame naming the problem and closes the connection once it
// (and anything queued before it) is written. The first reason wins: fail reports
// whether this call decided the close (false: the connection was already closing).
func (c *Conn) fail(reason CloseReason, code protocol.Code, msg string) bool {
	c.wmu.Lock()
	out := c.outLocked()
	if out == nil {
		c.wmu.Unlock()
		return false
	}
	c.closing = true
	e := c.endLocked(reason)
	e.reason, e.code = reason, code
	c.releaseSlot()
	c.wakeReaderLocked() // to read and drop what the peer still sends, until it leaves
	*out = protocol.AppendJSON(*out, protocol.TypeError, 0, &protocol.ErrorPayload{Code: code, Message: msg})
	c.queuedLocked(protocol.TypeError, 1)
	c.wmu.Unlock()
	c.m.log.Debug("closing connection", zap.Uint64("conn_id", c.id), zap.String("reason", string(reason)), zap.String("code", string(code)), zap.String("message", msg))
	return true
}

// releaseSlot gives c's place under limits.max_conns back, once.
func (c *Conn) releaseSlot() {
	if c.slot.CompareAndSwap(true, false) {
		c.m.slots.Add(-1)
	}
}

// closeNow closes the socket without a goodbye; the reader then tears down.
func (c *Conn) closeNow(reason CloseReason) {
	c.releaseSlot()
	c.wmu.Lock()
	c.closing = true
	c.endLocked(reason)
	c.wakeReaderLocked() // its next read fails on the closed socket: teardown
	c.wmu.Unlock()
	c.closeSocket()
}

// closeSocket closes c's socket from anywhere but its reader, and starts the
// reader if c is parked, so that it reads the close and tears c down.
func (c *Conn) closeSocket() {
	c.nc.Close()
	c.wakeParked()
}

// holdOutput reports whether c is closing and, unless it is, holds the output for
// the reader about to work on a read, so that the PONGs and ACKs this read's work queues are
// written by the reader itself afterwards (flushHeld), not by a flusher goroutine
// started for them. TLS connections write through their record layer and hold nothing.
func (c *Conn) holdOutput() (closing bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.closing && !c.isTLS() {
		c.held = true
	}
	return c.closing
}

// closedChan is the Done of a connection torn down before anyone asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done is closed when the connection has been torn down.
func (c *Conn) Done() <-chan struct{} {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}
