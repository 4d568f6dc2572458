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

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
)

// Handoff of legacy connections to the new process after an upgrade (issue 12),
// over the channel and in the batches internal/conn uses for native ones. These
// formats have no GOAWAY, so without it a legacy agent stays on the old process
// until drain.timeout cuts it, and a cut ffff agent gives up for good.
//
// As in internal/conn, a connection asked to move gets a read deadline in the past,
// which wakes its reader without closing the socket. The reader (quiesce) waits
// until its reply queue is empty (every submitted batch committed, every reply
// released) and every byte of output is written, then marks the connection closing
// (under mu, so nothing more is queued), captures the bytes of an incomplete frame
// and reports itself quiet. Verdicts as in internal/conn: moved (closed here without
// shutdown: no FIN), lost (sent, not acknowledged: closed, as a crash would) or
// fallback (never sent: it serves on, and the legacy drain that follows serves it
// until drain.timeout, the path of a listener the new process does not have).
//
// Connections are asked one batch (handoff.MaxFDs) at a time: each one stops
// reading from when it is asked until its batch is acknowledged.
const (
	hoNone      int32 = iota
	hoRequested       // asked to stop at a quiet point
	hoQuiet           // stopped: waiting for the verdict
	hoReleased        // fell back before it was quiet: serves on
)

type hoVerdict uint8

const (
	verdictMoved hoVerdict = iota + 1
	verdictLost
	verdictFallback
)

// quietPoll is how often a reader waiting for its quiet point looks again: the wait
// is for commits (a few ms) and a flush, once per connection per upgrade.
const quietPoll = time.Millisecond

// aLongTimeAgo is a read deadline in the past: it wakes a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

type hoRun struct {
	deadline time.Time
	events   chan hoEvent
}

type hoEvent struct {
	c      *lconn
	quiet  bool
	reason string
}

// HandOff moves this listener's connections to the new process through ch, each at
// its quiet point; one not quiet by deadline falls back, as does every one not yet
// sent once ch fails (Err set). Call it after the listener is closed and before
// Drain, which then finds only those that fell back. The caller has checked that
// the new process has a listener of this name and format. It returns once every
// connection is moved (its teardown done), lost, or serving again.
func (l *Listener) HandOff(ctx context.Context, ch conn.BatchSender, deadline time.Time) conn.HandoffResult {
	start := time.Now()
	res := conn.HandoffResult{Fallback: map[string]int{}}
	conns := l.snapshot(nil)
	var finished []*lconn
	for i := 0; i < len(conns); i += handoff.MaxFDs {
		chunk := conns[i:min(i+handoff.MaxFDs, len(conns))]
		switch {
		case res.Err != nil:
			res.Fallback["channel"] += len(chunk)
			continue
		case ctx.Err() != nil:
			res.Fallback["interrupted"] += len(chunk)
			continue
		case !time.Now().Before(deadline):
			res.Fallback["timeout"] += len(chunk)
			continue
		}
		batch := l.quietBatch(ctx, chunk, deadline, &res)
		if len(batch) == 0 {
			continue
		}
		if err := sendBatch(ch, batch); err != nil {
			res.Err = err
			res.Lost += len(batch)
			for _, c := range batch {
				c.hoVerdict <- verdictLost
			}
		} else {
			res.Batches++
			res.Moved += len(batch)
			for _, c := range batch {
				c.hoVerdict <- verdictMoved
			}
		}
		finished = append(finished, batch...)
	}
	for _, c := range finished {
		<-c.done
	}
	res.Duration = time.Since(start)
	return res
}

// quietBatch asks every connection of chunk to stop and returns those that reached
// their quiet point by deadline; the others are counted as fallen back.
func (l *Listener) quietBatch(ctx context.Context, chunk []*lconn, deadline time.Time, res *conn.HandoffResult) []*lconn {
	run := &hoRun{deadline: deadline, events: make(chan hoEvent, len(chunk))}
	var asked []*lconn
	for _, c := range chunk {
		if reason := c.requestHandoff(run); reason != "" {
			res.Fallback[reason]++
			continue
		}
		asked = append(asked, c)
	}
	pending := len(asked)
	// release ends the wait for every connection not yet quiet: each one the CAS
	// takes is counted here; the others report themselves through events.
	release := func(reason string) {
		for _, c := range asked {
			if c.hoState.CompareAndSwap(hoRequested, hoReleased) {
				res.Fallback[reason]++
				pending--
			}
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	released := false
	var batch []*lconn
	for pending > 0 {
		var ev hoEvent
		if released {
			ev = <-run.events
		} else {
			select {
			case ev = <-run.events:
			case <-timer.C:
				release("timeout")
				released = true
				continue
			case <-ctx.Done():
				release("interrupted")
				released = true
				continue
			}
		}
		pending--
		if ev.quiet {
			batch = append(batch, ev.c)
		} else {
			res.Fallback[ev.reason]++
		}
	}
	return batch
}

func sendBatch(ch conn.BatchSender, batch []*lconn) error {
	fds := make([]int, 0, len(batch))
	states := make([][]byte, 0, len(batch))
	for _, c := range batch {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return fmt.Errorf("legacy handoff: conn %d is not a socket", c.id)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return fmt.Errorf("legacy handoff: conn %d: %w", c.id, err)
		}
		// The socket stays open until the verdict, so the descriptor is valid for
		// the send; Control only reads it.
		rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
		states = append(states, c.hoMsg)
	}
	return ch.Send(fds, states)
}

// requestHandoff asks c's reader to stop at its quiet point; it returns why c
// cannot move ("" when asked).
func (c *lconn) requestHandoff(run *hoRun) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return "closing"
	}
	c.hoVerdict = make(chan hoVerdict, 1)
	c.ho.Store(run)
	c.hoState.Store(hoRequested)
	c.nc.SetReadDeadline(aLongTimeAgo) // wakes the reader; the socket stays open
	return ""
}

// handoffWake reports whether err is the wake-up of a handoff request rather than
// the end of the connection.
func (c *lconn) handoffWake(err error) bool {
	var ne net.Error
	return c.ho.Load() != nil && errors.As(err, &ne) && ne.Timeout()
}

// quiesce runs on the reader once a handoff's deadline stopped it. It returns true
// when the connection has left this process (moved or lost: the reader tears it
// down with that reason) and false when the reader must serve on.
func (c *lconn) quiesce() bool {
	run := c.ho.Load()
	c.paused.Store(true) // stopped on purpose: the reaper must not time it out
	for {
		if c.hoState.Load() != hoRequested { // released: the handoff is over for c
			c.resumeReading()
			return false
		}
		quiet, closing := c.tryQuiet()
		if quiet {
			break
		}
		if closing || !time.Now().Before(run.deadline) {
			reason := "busy" // commits or output pending past the deadline
			if closing {
				reason = "closing"
			}
			if c.hoState.CompareAndSwap(hoRequested, hoReleased) {
				run.events <- hoEvent{c: c, reason: reason}
			}
			c.resumeReading()
			return false
		}
		time.Sleep(quietPoll)
	}
	run.events <- hoEvent{c: c, quiet: true}
	switch <-c.hoVerdict {
	case verdictMoved:
		c.setReason(ReasonHandoff)
		return true
	case verdictLost:
		c.setReason(ReasonHandoffLost)
		return true
	}
	c.mu.Lock()
	if c.hoClosing {
		c.closing, c.hoClosing = false, false
	}
	c.mu.Unlock()
	c.resumeReading()
	return false
}

// tryQuiet checks for the quiet point and, at it, closes the output (under mu) and
// encodes the state. closing says c is closing for another reason: it cannot move.
func (c *lconn) tryQuiet() (quiet, closing bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false, true
	}
	if c.flushing || len(c.out) > 0 || len(c.queue) > 0 {
		c.mu.Unlock()
		return false, false
	}
	if !c.hoState.CompareAndSwap(hoRequested, hoQuiet) {
		c.mu.Unlock()
		return false, false // released meanwhile; the caller sees it
	}
	c.closing, c.hoClosing = true, true // the queue is empty: nothing more comes
	c.mu.Unlock()
	c.hoMsg = c.encodeState()
	return true, false
}

// encodeState is c's state at its quiet point, on the reader.
func (c *lconn) encodeState() []byte {
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

// resumeReading undoes the stop: the reader serves on in this process.
func (c *lconn) resumeReading() {
	c.nc.SetReadDeadline(time.Time{})
	c.lastSeen.Store(mono.Now())
	c.ho.Store(nil)
	c.paused.Store(false)
}

func (c *lconn) setReason(r CloseReason) {
	c.mu.Lock()
	c.reason = r
	c.mu.Unlock()
}

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
	l.add(c)
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
