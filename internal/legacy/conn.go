package legacy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/connset"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/mono"
)

const (
	// initialReadBuf is what a connection reads into until a frame needs more; the
	// buffer then grows with the bytes that arrive, up to one whole frame.
	initialReadBuf = 4 << 10
	// maxPendingOut caps replies a peer leaves unread before it is cut as a slow
	// consumer (as internal/conn does).
	maxPendingOut = 1 << 20
)

// lconn is one legacy connection. Its reader goroutine owns the read side; the
// write side (mu) is shared with the destination's committer, which releases
// replies, and the flusher goroutine, which exists only while there is output.
type lconn struct {
	id       uint64
	l        *Listener
	nc       net.Conn
	remote   string
	peer     netip.Addr
	clientID string
	since    time.Time
	maxFrame int

	lastSeen   atomic.Int64 // mono.Now() of the last read that returned bytes
	writeStart atomic.Int64 // mono.Now() when the write in progress began, 0 when none

	framesIn, bytesIn, bytesOut atomic.Uint64

	// read side, owned by the reader goroutine
	buf     []byte
	rlen    int
	scratch []byte
	nextSeq uint64
	inSync  bool // skipping junk: a run of it counts as one sync drop, however it is read

	mu sync.Mutex
	// queue holds the reads whose replies wait for their commit, in read order:
	// replies leave only from its head, so they go out in the order of the frames
	// whatever order a destination commits in (the spool's single committer
	// commits in order anyway): with every report stored, the n-th ffff receipt
	// line answers the n-th report of the stream.
	queue          []*entry
	out            []byte
	flushing       bool
	closing        bool
	reason         CloseReason
	connset.Member // its place in the listener's set
	done           chan struct{}
	// hoClosing: closing was set by a handoff at its quiet point (handoff.go), not
	// by an end: a close must not touch the socket the new process may own.
	hoClosing bool

	// handoff (handoff.go): where this connection is in it
	ho     handoff.Point
	paused atomic.Bool // stopped for a handoff: the reaper leaves it alone
}

// reply is what one frame of a read is owed, in frame order.
type reply struct {
	kind frameKind
	typ  int16 // c8c9
	seq  uint64
	echo [2]int // c8c9: the echo members are entry.echo[echo[0]:echo[1]]
}

// entry is one read's frames that need a reply (or, for headers, only an
// outcome), and the Waiter of its batch.
type entry struct {
	c       *lconn
	replies []reply
	echo    []byte
	reports int
	queued  bool
	done    bool
	err     error
}

var entryPool = sync.Pool{New: func() any { return new(entry) }}

func getEntry(c *lconn) *entry {
	e := entryPool.Get().(*entry)
	e.c = c
	return e
}

func putEntry(e *entry) {
	if cap(e.echo) > 64<<10 || cap(e.replies) > 4096 {
		*e = entry{}
	}
	e.c, e.replies, e.echo, e.reports, e.queued, e.done, e.err = nil, e.replies[:0], e.echo[:0], 0, false, false, nil
	entryPool.Put(e)
}

var batchPool = sync.Pool{New: func() any { return new(ingest.Batch) }}

// Committed implements ingest.Waiter: the batch of this read is durable (err ==
// nil) or is not.
func (e *entry) Committed(_ []uint64, err error) {
	c := e.c
	if err == nil {
		c.l.obs.Stored(e.reports)
	} else {
		c.l.obs.NotStored(e.reports)
	}
	if !e.queued {
		putEntry(e)
		return
	}
	c.mu.Lock()
	e.done, e.err = true, err
	c.releaseLocked()
	c.mu.Unlock()
}

// releaseLocked moves the replies of the done reads at the head of the queue to
// the output, in order. Caller holds mu.
func (c *lconn) releaseLocked() {
	n := 0
	receipts := 0
	for n < len(c.queue) && c.queue[n].done {
		e := c.queue[n]
		if !c.closing {
			receipts += c.appendReplies(e)
		}
		putEntry(e)
		n++
	}
	if n == 0 {
		return
	}
	m := copy(c.queue, c.queue[n:])
	clear(c.queue[m:]) // released entries must not stay reachable from here
	c.queue = c.queue[:m]
	if receipts > 0 {
		c.l.obs.Receipts(receipts)
	}
	if c.closing || len(c.out) == 0 {
		return
	}
	if len(c.out) > maxPendingOut {
		c.closeLocked(ReasonSlowConsumer)
		return
	}
	if !c.flushing {
		c.flushing = true
		go c.flush()
	}
}

// appendReplies appends e's replies to the output and returns how many were
// receipts for stored reports. A report whose commit failed gets no ffff line (the
// format has no negative reply, and closing would stop the agent for good) and a
// c8c9 result with status 503.
func (c *lconn) appendReplies(e *entry) int {
	receipts := 0
	for i := range e.replies {
		r := &e.replies[i]
		switch {
		case r.kind == kindHeartbeat:
			c.out = append(c.out, FFFFHeartbeatReply...)
		case c.l.format == FormatFFFF:
			if e.err == nil {
				c.out = append(c.out, FFFFReportReply...)
				receipts++
			}
		case c.l.format == FormatC8C9:
			c.out = appendC8C9Reply(c.out, r.typ, e.echo[r.echo[0]:r.echo[1]], r.seq, e.err)
			if e.err == nil {
				receipts++
			}
		}
	}
	return receipts
}

func (c *lconn) serve() {
	defer c.teardown()
	if c.buf == nil { // an adopted connection comes with its buffer
		c.buf = make([]byte, initialReadBuf)
	}
	for {
		n, err := c.nc.Read(c.buf[c.rlen:])
		if n > 0 {
			c.rlen += n
			c.lastSeen.Store(mono.Now())
			c.bytesIn.Add(uint64(n))
			c.l.obs.BytesIn(n)
			c.parse(time.Now())
		}
		if err != nil {
			if c.handoffWake(err) {
				if c.quiesce() {
					return // moved or lost: the new process holds the socket
				}
				continue
			}
			c.closeNow(ReasonClient)
			return
		}
	}
}

// parse handles every whole frame in the buffer: one batch per read, submitted
// once, and one queue entry for the replies it owes.
func (c *lconn) parse(recv time.Time) {
	l := c.l
	e := getEntry(c)
	b := batchPool.Get().(*ingest.Batch)
	buf := c.buf[:c.rlen]
	off, need := 0, 0
	var reports, heartbeats int
	drops := map[string]int(nil)
	for off < len(buf) {
		var d decoded
		d, c.scratch = l.codec.decode(buf[off:], c.maxFrame, c.scratch)
		if d.N == 0 {
			need = d.Need
			break
		}
		off += d.N
		if d.Drop == DropSync && c.inSync {
			continue
		}
		c.inSync = d.Drop == DropSync
		if d.Drop != "" {
			if drops == nil {
				drops = make(map[string]int, 2)
			}
			drops[d.Drop]++
			continue
		}
		f := &d.Frame
		switch f.Kind {
		case kindHeartbeat:
			heartbeats++
			e.replies = append(e.replies, reply{kind: kindHeartbeat})
		case kindReport:
			reports++
			seq := c.nextSeq
			c.nextSeq++
			b.Add(&ingest.Record{ClientID: c.clientID, Seq: seq, ConnID: c.id, Received: recv, Payload: f.Payload,
				Listener: l.name, Format: string(l.format)})
			if l.codec.replies() {
				r := reply{kind: kindReport, typ: f.Type, seq: seq}
				if l.format == FormatC8C9 {
					r.echo[0] = len(e.echo)
					e.echo = appendC8C9Echo(e.echo, f.Payload)
					r.echo[1] = len(e.echo)
				}
				e.replies = append(e.replies, r)
			}
		}
	}
	for reason, n := range drops {
		l.obs.Dropped(reason, n)
	}
	if reports > 0 {
		l.obs.Frames(FrameReport, reports)
	}
	if heartbeats > 0 {
		l.obs.Frames(FrameHeartbeat, heartbeats)
	}
	c.framesIn.Add(uint64(reports + heartbeats))
	e.reports = reports

	// Queue before Submit: the commit may come back before Submit returns. From the
	// moment e is queued it may be released and recycled (at once, for a read of
	// heartbeats only), so only locals decide what follows.
	queued := len(e.replies) > 0
	if queued {
		e.queued = true
		c.mu.Lock()
		c.queue = append(c.queue, e)
		if reports == 0 { // heartbeats only: due as soon as what is before them is
			e.done = true
			c.releaseLocked()
		}
		c.mu.Unlock()
	}
	switch {
	case reports > 0:
		l.dest.Submit(b, e) // e may be recycled from here on
	case !queued:
		putEntry(e)
	}
	b.Reset()
	batchPool.Put(b)

	// Keep the unparsed tail at the front of the buffer.
	rest := len(buf) - off
	if off > 0 && rest > 0 {
		copy(c.buf, buf[off:])
	}
	c.rlen = rest
	switch {
	case rest == len(c.buf) && need > len(c.buf):
		// A frame larger than the buffer, which its bytes have filled: grow with the
		// bytes that arrived (doubling, up to the frame's size), never to the size a
		// header merely announces, so a header alone pins no large buffer.
		big := make([]byte, min(need, 2*len(c.buf)))
		copy(big, c.buf[:rest])
		c.buf = big
	case rest == 0 && len(c.buf) > initialReadBuf:
		c.buf = make([]byte, initialReadBuf) // done with a one-off big frame
	}
}

// closeNow closes the socket without a word (the formats have none); the reader
// then tears the connection down. The first reason wins.
func (c *lconn) closeNow(reason CloseReason) {
	c.mu.Lock()
	c.closeLocked(reason)
	c.mu.Unlock()
}

func (c *lconn) closeLocked(reason CloseReason) {
	if c.ho.Held() {
		return // quiet for a handoff: the verdict decides (the new process checks allow)
	}
	c.closing = true
	if c.reason == "" {
		c.reason = reason
	}
	go c.nc.Close() // not under mu: a write may hold the socket
}

// flush writes everything pending, again and again until nothing is, then exits.
// A stuck write is cut by the reaper.
func (c *lconn) flush() {
	var spare []byte
	for {
		c.mu.Lock()
		if len(c.out) == 0 || c.closing {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		buf := c.out
		c.out = spare[:0]
		c.mu.Unlock()

		c.writeStart.Store(mono.Now())
		n, err := c.nc.Write(buf)
		c.writeStart.Store(0)
		c.bytesOut.Add(uint64(n))
		c.l.obs.BytesOut(n)
		if err != nil {
			c.mu.Lock()
			c.flushing = false
			c.mu.Unlock()
			c.closeNow(ReasonClient)
			return
		}
		if cap(buf) <= 64<<10 {
			spare = buf
		} else {
			spare = nil
		}
	}
}

func (c *lconn) teardown() {
	c.nc.Close()
	c.mu.Lock()
	c.closing = true
	if c.reason == "" {
		c.reason = ReasonClient
	}
	reason := c.reason
	c.out = nil
	c.mu.Unlock()
	c.ho.Closed(c) // asked, not yet quiet: the handoff counts it "closed" at once
	c.buf, c.scratch = nil, nil
	c.l.conns.Remove(c, nil)
	c.l.obs.Closed(reason)
	level := zap.InfoLevel
	if reason == ReasonClient || reason == ReasonDrain || reason == ReasonHandoff {
		level = zap.DebugLevel
	}
	if ce := c.l.log.Check(level, "legacy connection closed"); ce != nil {
		ce.Write(zap.String("listener", c.l.name), zap.Uint64("conn_id", c.id), zap.String("client_id", c.clientID),
			zap.String("reason", string(reason)), zap.Uint64("frames_in", c.framesIn.Load()))
	}
	close(c.done)
	c.l.live.Done()
}

func (c *lconn) info() conn.Info {
	return conn.Info{
		ID: c.id, ClientID: c.clientID, Remote: c.remote, Since: c.since,
		LastSeen: mono.Time(c.lastSeen.Load()), State: "active",
		FramesIn: c.framesIn.Load(), BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Listener: c.l.name, Format: string(c.l.format),
	}
}
