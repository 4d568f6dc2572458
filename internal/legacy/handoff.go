package legacy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
)

// Handoff of legacy connections to the new process after an upgrade, over the
// channel, in the batches and by the driver internal/conn uses for native ones
// (internal/handoff). These formats have no GOAWAY, so without it a legacy agent
// stays on the old process until drain.timeout cuts it, and a cut ffff agent gives
// up for good.
//
// What is legacy is what idle means: the reply queue empty (every submitted batch
// committed, every reply released) and every byte of output written, under mu; the
// state then captures the bytes of an incomplete frame, the next seq and whether
// the reader was skipping junk. A connection that falls back serves on, and the
// legacy drain that follows serves it until drain.timeout, the path of a listener
// the new process does not have.

// HandoffTarget implements handoff.Group and handoff.Adopter: a legacy connection
// goes to the new process's listener of the same name and format.
func (l *Listener) HandoffTarget() handoff.Target {
	return handoff.Target{Kind: handoff.KindLegacy, Listener: l.name, Format: string(l.format)}
}

// HandoffConns implements handoff.Group: every open connection.
func (l *Listener) HandoffConns() []handoff.Conn { return handoff.Conns(l.conns.Snapshot(nil)) }

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
		return handoff.ReasonClosing
	}
	if c.l.format == FormatFile {
		return handoff.ReasonTransfer
	}
	c.ho.Request(run)
	c.nc.SetReadDeadline(handoff.WakeNow)
	return ""
}

// HandoffOutput implements handoff.Conn.
func (c *lconn) HandoffOutput() (sync.Locker, *bool) { return &c.mu, &c.closing }

// HandoffIdle implements handoff.Conn; under mu.
func (c *lconn) HandoffIdle() bool { return !c.flushing && len(c.out) == 0 && len(c.queue) == 0 }

// HandoffState implements handoff.Conn: c's state at its quiet point, on the reader.
func (c *lconn) HandoffState() *handoff.State {
	return &handoff.State{
		Kind: handoff.KindLegacy, ConnID: c.id, ClientID: c.clientID, Remote: c.remote, Since: c.since,
		MaxFrame: c.maxFrame, Listener: c.l.name, Format: string(c.l.format), NextSeq: c.nextSeq, InSync: c.inSync,
		FramesIn: c.framesIn.Load(), BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Partial: append([]byte(nil), c.buf[:c.rlen]...),
	}
}

// HandoffServeOn implements handoff.Conn: the reader serves on in this process.
func (c *lconn) HandoffServeOn(bool) {
	c.nc.SetReadDeadline(time.Time{})
	c.lastSeen.Store(mono.Now())
	c.paused.Store(false)
}

// endReasons are the close reasons of connections that left.
var endReasons = map[handoff.Verdict]CloseReason{handoff.Moved: ReasonHandoff, handoff.Lost: ReasonHandoffLost}

// HandoffLeft implements handoff.Conn; under mu. The reader's teardown then closes
// c for that reason.
func (c *lconn) HandoffLeft(v handoff.Verdict) { c.reason = endReasons[v] }

// HandoffFD implements handoff.Conn.
func (c *lconn) HandoffFD() (int, error) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("legacy conn %d is not a socket", c.id)
	}
	rc, err := sc.SyscallConn()
	if err == nil {
		var fd int
		if fd, err = handoff.RawFD(rc); err == nil {
			return fd, nil
		}
	}
	return 0, fmt.Errorf("legacy conn %d: %w", c.id, err)
}

// HandoffDone implements handoff.Conn.
func (c *lconn) HandoffDone() <-chan struct{} { return c.done }

// HandoffLastRead implements handoff.Conn.
func (c *lconn) HandoffLastRead() int64 { return c.lastSeen.Load() }

// Adopt implements handoff.Adopter: it takes over the socket f (it becomes the
// connection, State.Open) described by st, a connection the
// previous process stopped at its quiet point on this listener's namesake, and
// serves it from there: same client id, seqs counting on from st.NextSeq, the
// partial frame it had read. A peer this listener's allow no longer permits is
// closed, as a reload would.
func (l *Listener) Adopt(f *os.File, st *handoff.State) error {
	if st.Kind != handoff.KindLegacy || st.Format != string(l.format) {
		f.Close()
		return fmt.Errorf("legacy: adopt conn %d (%s): a %s %s connection on %s listener %s", st.ConnID, st.ClientID, st.Kind, st.Format, l.format, l.name)
	}
	nc, err := st.Open(f)
	if err != nil {
		return err
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
