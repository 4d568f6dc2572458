package conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
)

// The sending side of a handoff for native connections: internal/handoff drives it
// (Drive) and holds each connection's quiet-point state (Point); what is native is
// the quiet point itself: every REPORT read answered (answered == reportsRead),
// nothing pending or being written, under wmu. A native connection falls back
// without being asked when it is TLS (Go cannot export a TLS session's state), in
// its handshake, closing, or told GOAWAY; one that falls back is drained with
// GOAWAY, today's path.

// HandOff moves every active connection to the new process through ch, each at its
// quiet point; a connection not quiet within timeout falls back, as does every one
// not yet sent once ch fails. Call it after the listener is closed and before Drain,
// which then finds only the connections that fell back. It returns once every
// connection asked is moved (its teardown done), lost, or serving again.
func (m *Manager) HandOff(ctx context.Context, ch handoff.BatchSender, timeout time.Duration) handoff.Result {
	conns := m.reg.Snapshot(nil)
	hc := make([]handoff.Conn, len(conns))
	for i, c := range conns {
		hc[i] = c
	}
	return handoff.Drive(ctx, hc, ch, time.Now().Add(timeout))
}

// quiesce runs on the reader once the handoff's deadline stopped it. It returns
// true when the connection has left this process (moved or lost, torn down) and
// false when the reader must serve on.
func (c *Conn) quiesce() bool {
	// The reader is stopped on purpose: the reaper must not time the client out.
	c.paused.Store(true)
	return c.ho.Load().Quiesce(c)
}

// handoffAsked reports whether a handoff asked c to stop: a read deadline the
// reader meets is then its wake-up.
func (c *Conn) handoffAsked() bool {
	p := c.ho.Load()
	return p != nil && p.Asked()
}

// handoffClosed is the teardown's part in a handoff (handoff.Point.Closed).
func (c *Conn) handoffClosed() {
	if p := c.ho.Load(); p != nil {
		p.Closed(c)
	}
}

// HandoffPoint implements handoff.Conn; nil until c is asked.
func (c *Conn) HandoffPoint() *handoff.Point { return c.ho.Load() }

// HandoffRequest implements handoff.Conn: it asks c's reader to stop at its quiet
// point and returns why c cannot move ("" when asked).
func (c *Conn) HandoffRequest(run *handoff.Run) string {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.isTLS():
		// Go cannot export a TLS session's state: the connection moves by GOAWAY.
		return "tls"
	case c.state.Load() != stateActive:
		return "handshake"
	case c.closing:
		return "closing"
	case c.goawayAt.Load() != 0:
		return "goaway"
	}
	p := new(handoff.Point)
	p.Request(run)
	c.ho.Store(p)
	c.nc.SetReadDeadline(aLongTimeAgo) // wakes the reader; the socket stays open
	return ""
}

// HandoffQuiet implements handoff.Conn: it checks for the quiet point and, at it,
// closes the output (under wmu).
func (c *Conn) HandoffQuiet() (quiet, closing bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return false, true
	}
	if c.flushing || (c.out != nil && len(*c.out) > 0) || c.answered.Load() != c.reportsRead {
		return false, false
	}
	if !c.ho.Load().TakeQuiet() {
		return false, false // released meanwhile; Quiesce sees it
	}
	c.closing, c.hoClosing = true, true // nothing more is queued: no report is in flight
	return true, false
}

// HandoffState implements handoff.Conn: c's state at its quiet point, on the reader.
func (c *Conn) HandoffState() []byte {
	st := &handoff.State{
		Kind: handoff.KindNative, ConnID: c.id, ClientID: c.clientID, Token: c.token,
		Remote: c.remote, Since: c.since, MaxFrame: c.maxFrame, MaxInFlight: c.maxInFlight,
		FramesIn: c.framesIn.Load(), FramesOut: c.framesOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
	}
	if c.rlen > 0 {
		st.Partial = append([]byte(nil), (*c.rbuf)[:c.rlen]...)
	}
	if c.dd != nil {
		st.DedupHas, st.DedupHi, st.DedupDurable = c.dd.Durable()
	}
	b, err := st.Encode()
	if err != nil {
		// A State of strings, numbers and bytes always encodes; should it not, an
		// empty message makes the new process reject this one connection.
		c.m.log.Error("handoff: state not encoded", zap.Uint64("conn_id", c.id), zap.Error(err))
	}
	return b
}

// HandoffResume implements handoff.Conn: the reader serves on in this process.
func (c *Conn) HandoffResume() {
	c.wmu.Lock()
	if c.hoClosing { // quiet, then fell back: the output opens again
		c.closing, c.hoClosing = false, false
	}
	closing := c.closing
	c.wmu.Unlock()
	if closing {
		// Its ERROR is on the way out: the flusher's goodbye sets the linger
		// deadline; until then, bound the reads as that linger would.
		c.nc.SetReadDeadline(time.Now().Add(lingerAfterError))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	now := mono.Now()
	c.lastSeen.Store(now)
	if c.frameStart.Load() != 0 {
		c.frameStart.Store(now)
	}
	c.paused.Store(false)
}

// HandoffEnd implements handoff.Conn: it tears down a connection that left, with
// ReasonHandoff or ReasonHandoffLost.
func (c *Conn) HandoffEnd(v handoff.Verdict) {
	c.wmu.Lock()
	c.reason = ReasonHandoff
	if v == handoff.Lost {
		c.reason = ReasonHandoffLost
	}
	c.wmu.Unlock()
	c.releaseSlot()
	c.teardown()
}

// errNoSocket: a TLS connection has no RawConn; HandoffRequest never asks one.
var errNoSocket = errors.New("conn: a TLS connection has no socket to hand off")

// HandoffFD implements handoff.Conn.
func (c *Conn) HandoffFD() (int, error) {
	if c.rc == nil {
		return 0, errNoSocket
	}
	fd := -1
	// Control only reads the descriptor.
	if err := c.rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return 0, fmt.Errorf("conn %d: %w", c.id, err)
	}
	return fd, nil
}

// HandoffDone implements handoff.Conn.
func (c *Conn) HandoffDone() <-chan struct{} { return c.done }
