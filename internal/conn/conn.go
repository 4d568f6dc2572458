package conn

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

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
	id       uint64
	m        *Manager
	nc       net.Conn
	rc       syscall.RawConn
	remote   string
	since    time.Time
	accepted int64 // mono.Now() at accept
	maxFrame int   // copied at accept; a reload applies to new connections only

	state atomic.Int32
	// slot is true while c counts against limits.max_conns: from accept until the
	// server decides to close it (an ERROR queued, or the socket closed), not until its
	// teardown ends, which a lingering ERROR can delay by seconds.
	slot     atomic.Bool
	lastSeen atomic.Int64 // mono.Now() of the last read that returned bytes
	// writeStart is mono.Now() when the in-progress write began, 0 when none: the reaper
	// closes a connection whose write has been stuck past the write timeout, so no
	// write deadline (a runtime timer) is armed per write.
	writeStart atomic.Int64
	// goawayAt is mono.Now() when GOAWAY was queued (0: not told); the reaper cuts the
	// connection at goawayAt + the drain timeout.
	goawayAt atomic.Int64

	// Set once by the reader during the handshake, before state becomes active;
	// read by others only after loading state.
	clientID string
	token    string

	framesIn, framesOut, bytesIn, bytesOut atomic.Uint64

	// read side, owned by the reader goroutine
	rbuf   *[]byte // nil while idle
	rlen   int     // bytes of rbuf holding unparsed input
	rn     int     // result of the last raw read
	rerr   error
	readFn func(fd uintptr) bool // c.readRaw, bound once so waiting allocates nothing

	// write side
	wmu      sync.Mutex
	out      *[]byte // pending output, nil when none
	flushing bool
	closing  bool // an ERROR is queued or the socket is closed: queue nothing more
	reason   CloseReason
	code     protocol.Code // the ERROR the server sent, if it sent one
	regIdx   int           // position in the registry's slice, under the registry's lock
	done     chan struct{}
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
		ID: c.id, Remote: c.remote, Since: c.since,
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
	c.reason = reason
	c.code = code
	c.releaseSlot()
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
	if c.reason == "" {
		c.reason = reason
	}
	c.wmu.Unlock()
	c.nc.Close()
}

func (c *Conn) isClosing() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closing
}

// Done is closed when the connection has been torn down.
func (c *Conn) Done() <-chan struct{} { return c.done }
