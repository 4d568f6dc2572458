package conn

import (
	"fmt"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
)

// The sending side of a handoff for native connections: internal/handoff drives it
// and holds each connection's quiet point (handoff.Point); what is native is what
// idle means: every REPORT read answered (answered == reportsRead), nothing pending
// or being written, under wmu, and for TLS nothing opened left unread in the record
// layer. A TLS 1.3 connection moves with its session (tlssession.go); one whose
// session stays in crypto/tls (TLS 1.2) falls back without being asked, as does
// one in its handshake, closing, or told GOAWAY; one that falls back is drained
// with GOAWAY.

// HandoffTarget implements handoff.Group and handoff.Adopter: native connections
// go to the new process's Manager.
func (m *Manager) HandoffTarget() handoff.Target { return handoff.Target{Kind: handoff.KindNative} }

// HandoffConns implements handoff.Group: every live connection.
func (m *Manager) HandoffConns() []handoff.Conn { return handoff.Conns(m.reg.Snapshot(nil)) }

// quiesce runs on the reader once the handoff's deadline stopped it. It returns
// true when the connection has left this process (moved or lost, torn down) and
// false when the reader must serve on.
func (c *Conn) quiesce() bool {
	// The reader is stopped on purpose: the reaper must not time the client out.
	c.paused.Store(true)
	if !c.ho.Load().Quiesce(c) {
		return false
	}
	c.releaseSlot()
	c.teardown()
	return true
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
	case c.isTLS() && !c.tlsMovable():
		return handoff.ReasonTLS
	case c.state.Load() != stateActive:
		return handoff.ReasonHandshake
	case c.closing:
		return handoff.ReasonClosing
	case c.goawayAt.Load() != 0:
		return handoff.ReasonGoaway
	}
	p := new(handoff.Point)
	p.Request(run)
	c.ho.Store(p)
	c.nc.SetReadDeadline(handoff.WakeNow)
	c.wakeParked()
	return ""
}

// HandoffOutput implements handoff.Conn.
func (c *Conn) HandoffOutput() (sync.Locker, *bool) { return &c.wmu, &c.closing }

// HandoffIdle implements handoff.Conn; under wmu.
func (c *Conn) HandoffIdle() bool {
	return !c.flushing && (c.out == nil || len(*c.out) == 0) && c.answered.Load() == c.reportsRead &&
		(c.up == nil || !c.up.pipe.busy()) &&
		(!c.isTLS() || c.session().rl.Quiet())
}

// HandoffState implements handoff.Conn: c's state at its quiet point, on the reader.
func (c *Conn) HandoffState() *handoff.State {
	st := &handoff.State{
		Kind: handoff.KindNative, ConnID: c.id, ClientID: c.clientID, Token: c.token,
		Remote: c.remote, Since: time.Unix(0, c.since), MaxFrame: int(c.maxFrame), MaxInFlight: int(c.maxInFlight),
		FramesIn: c.framesIn.Load(), FramesOut: c.framesOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
	}
	st.Ack = c.ackMode()
	if c.rlen > 0 {
		st.Partial = append([]byte(nil), (*c.rbuf)[:c.rlen]...)
	}
	if dd := c.dedupWindow(); dd != nil {
		st.DedupHas, st.DedupHi, st.DedupDurable = dd.Durable()
	}
	if c.isTLS() {
		st.TLS = c.tlsHandoffState()
	}
	st.Uploads = c.handOverUploads()
	return st
}

// HandoffServeOn implements handoff.Conn: the reader serves on in this process.
func (c *Conn) HandoffServeOn(closing bool) {
	if c.up != nil {
		c.resumeUploads(c.up.handed)
		c.up.handed = nil
	}
	if closing {
		// Its ERROR is on the way out: the flusher's goodbye sets the linger
		// deadline; until then, bound the reads as that linger would.
		c.nc.SetReadDeadline(time.Now().Add(lingerAfterError))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.unpause()
}

// endReasons are the close reasons of connections that left.
var endReasons = map[handoff.Verdict]CloseReason{handoff.Moved: ReasonHandoff, handoff.Lost: ReasonHandoffLost}

// HandoffLeft implements handoff.Conn; under wmu. quiesce then tears c down.
func (c *Conn) HandoffLeft(v handoff.Verdict) {
	c.endLocked(endReasons[v]).reason = endReasons[v]
	if c.isTLS() {
		c.session().rl.Detach() // the teardown's close must not end the moved session
	}
}

// HandoffFD implements handoff.Conn.
func (c *Conn) HandoffFD() (int, error) {
	rc := c.rc
	if c.isTLS() {
		rc = c.session().t.rc
	}
	fd, err := handoff.RawFD(rc)
	if err != nil {
		return 0, fmt.Errorf("conn %d: %w", c.id, err)
	}
	return fd, nil
}

// HandoffDone implements handoff.Conn.
func (c *Conn) HandoffDone() <-chan struct{} { return c.Done() }

// HandoffLastRead implements handoff.Conn.
func (c *Conn) HandoffLastRead() int64 { return c.lastSeen.Load() }
