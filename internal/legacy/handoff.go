package legacy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
)

// Handoff of legacy connections to the new process after an upgrade (issue 12),
// over the channel, in the batches and by the driver internal/conn uses for native
// ones (handoff.Drive, handoff.Point). These formats have no GOAWAY, so without it
// a legacy agent stays on the old process until drain.timeout cuts it, and a cut
// ffff agent gives up for good.
//
// What is legacy is the quiet point: the reply queue empty (every submitted batch
// committed, every reply released) and every byte of output written, under mu; the
// state then captures the bytes of an incomplete frame, the next seq and whether
// the reader was skipping junk. A connection that falls back serves on, and the
// legacy drain that follows serves it until drain.timeout, the path of a listener
// the new process does not have.

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

// HandOff moves this listener's connections to the new process through ch, each at
// its quiet point; one not quiet by deadline falls back, as does every one not yet
// sent once ch fails (Err set). Call it after the listener is closed and before
// Drain, which then finds only those that fell back. The caller has checked that
// the new process has a listener of this name and format. It returns once every
// connection is moved (its teardown done), lost, or serving again.
func (l *Listener) HandOff(ctx context.Context, ch handoff.BatchSender, deadline time.Time) handoff.Result {
	conns := l.conns.Snapshot(nil)
	hc := make([]handoff.Conn, len(conns))
	for i, c := range conns {
		hc[i] = c
	}
	return handoff.Drive(ctx, hc, ch, deadline)
}

// handoffWake reports whether err is the wake-up of a handoff request rather than
// the end of the connection.
func (c *lconn) handoffWake(err error) bool {
	var ne net.Error
	return c.ho.Asked() && errors.As(err, &ne) && ne.Timeout()
}

// quiesce runs on the reader once a handoff's deadline stopped it. It returns true
// when the connection has left this process (moved or lost: the reader tears it
// down with that reason) and false when the reader must serve on.
func (c *lconn) quiesce() bool {
	c.paused.Store(true) // stopped on purpose: the reaper must not time it out
	return c.ho.Quiesce(c)
}

// HandoffPoint implements handoff.Conn.
func (c *lconn) HandoffPoint() *handoff.Point { return &c.ho }

// HandoffRequest implements handoff.Conn: it asks c's reader to stop at its quiet
// point and returns why c cannot move ("" when asked).
func (c *lconn) HandoffRequest(run *handoff.Run) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return "closing"
	}
	c.ho.Request(run)
	c.nc.SetReadDeadline(aLongTimeAgo) // wakes the reader; the socket stays open
	return ""
}

// HandoffQuiet implements handoff.Conn: it checks for the quiet point and, at it,
// closes the output (under mu).
func (c *lconn) HandoffQuiet() (quiet, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false, true
	}
	if c.flushing || len(c.out) > 0 || len(c.queue) > 0 {
		return false, false
	}
	if !c.ho.TakeQuiet() {
		return false, false // released meanwhile; Quiesce sees it
	}
	c.closing, c.hoClosing = true, true // the queue is empty: nothing more comes
	return true, false
}

// HandoffState implements handoff.Conn: c's state at its quiet point, on the reader.
func (c *lconn) HandoffState() []byte {
	st := &handoff.State{
		Kind: handoff.KindLegacy, ConnID: c.id, ClientID: c.clientID, Remote: c.remote, Since: c.since,
		MaxFrame: c.maxFrame, Listener: c.l.name, Format: string(c.l.format), NextSeq: c.nextSeq, InSync: c.inSync,
		FramesIn: c.framesIn.Load(), BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
	}
	if c.rlen > 0 {
		st.Partial = append([]byte(nil), c.buf[:c.rlen]...)
	}
	b, err := st.Encode()
	if err != nil {
		// A State of strings, numbers and bytes always encodes; should it not, an
		// empty message makes the new process reject this one connection.
		c.l.log.Error("legacy handoff: state not encoded", zap.Uint64("conn_id", c.id), zap.Error(err))
	}
	return b
}

// HandoffResume implements handoff.Conn: the reader serves on in this process.
func (c *lconn) HandoffResume() {
	c.mu.Lock()
	if c.hoClosing { // quiet, then fell back: the output opens again
		c.closing, c.hoClosing = false, false
	}
	c.mu.Unlock()
	c.nc.SetReadDeadline(time.Time{})
	c.lastSeen.Store(mono.Now())
	c.paused.Store(false)
}

// HandoffEnd implements handoff.Conn: it sets the reason (ReasonHandoff or
// ReasonHandoffLost) the reader's teardown closes c for.
func (c *lconn) HandoffEnd(v handoff.Verdict) {
	c.mu.Lock()
	c.reason = ReasonHandoff
	if v == handoff.Lost {
		c.reason = ReasonHandoffLost
	}
	c.mu.Unlock()
}

// HandoffFD implements handoff.Conn.
func (c *lconn) HandoffFD() (int, error) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("legacy conn %d is not a socket", c.id)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("legacy conn %d: %w", c.id, err)
	}
	fd := -1
	// Control only reads the descriptor.
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return 0, fmt.Errorf("legacy conn %d: %w", c.id, err)
	}
	return fd, nil
}

// HandoffDone implements handoff.Conn.
func (c *lconn) HandoffDone() <-chan struct{} { return c.done }

// Adopt takes over the socket f (closed by Adopt: the connection holds its own
// duplicate) described by st, a connection the previous process stopped at its
// quiet point on this listener's namesake, and serves it from there: same client
// id, seqs counting on from st.NextSeq, the partial frame it had read. A peer this
// listener's allow no longer permits is closed, as a reload would.
func (l *Listener) Adopt(f *os.File, st *handoff.State) error {
	if st.Kind != handoff.KindLegacy || st.Format != string(l.format) {
		f.Close()
		return fmt.Errorf("legacy: adopt conn %d (%s): a %s %s connection on %s listener %s", st.ConnID, st.ClientID, st.Kind, st.Format, l.format, l.name)
	}
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("legacy: adopt conn %d (%s): %w", st.ConnID, st.ClientID, err)
	}
	peer := peerAddr(nc)
	c := &lconn{
		id:       l.newID(),
		l:        l,
		nc:       nc,
		remote:   st.Remote,
		peer:     peer.Addr(),
		clientID: st.ClientID,
		since:    st.Since,
		maxFrame: st.MaxFrame,
		nextSeq:  st.NextSeq,
		inSync:   st.InSync,
		done:     make(chan struct{}),
	}
	if c.remote == "" {
		c.remote = nc.RemoteAddr().String()
	}
	// Room for the partial frame and what follows it: a full buffer would read 0
	// bytes forever (parse grows it only after a read).
	c.buf = make([]byte, max(initialReadBuf, 2*len(st.Partial)))
	c.rlen = copy(c.buf, st.Partial)
	c.framesIn.Store(st.FramesIn)
	c.bytesIn.Store(st.BytesIn)
	c.bytesOut.Store(st.BytesOut)
	c.lastSeen.Store(mono.Now())
	l.conns.Add(c)
	l.live.Add(1)
	if !l.Settings().allowed(c.peer) {
		c.closeNow(ReasonNotAllowed)
		l.log.Info("legacy connection adopted and closed: its network is no longer allowed", zap.String("listener", l.name),
			zap.Uint64("conn_id", c.id), zap.String("client_id", c.clientID))
	} else if ce := l.log.Check(zap.DebugLevel, "legacy connection adopted from the previous process"); ce != nil {
		ce.Write(zap.String("listener", l.name), zap.Uint64("conn_id", c.id), zap.Uint64("previous_conn_id", st.ConnID),
			zap.String("client_id", c.clientID), zap.Int("partial_bytes", len(st.Partial)))
	}
	go c.serve()
	return nil
}
