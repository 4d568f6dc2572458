package conn

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/mono"
)

// The sending side of a handoff (internal/handoff): each connection is stopped at a
// quiet point by its own reader, then sent to the new process in batches.
//
// A connection asked to move (requestHandoff) gets a read deadline in the past,
// which wakes its reader out of RawConn.Read without closing the socket. The reader
// (quiesce) then waits until every report it submitted is answered and every byte
// of output is written; it then marks the connection closing, under wmu, so that
// nothing more is queued (the reaper's ERRORs included), keeps any partial frame it
// holds and reports itself quiet. From then on neither side of the old process
// touches the socket until the verdict: moved (the new process acknowledged it: the
// socket is closed here without a shutdown, so no FIN), lost (sent, never
// acknowledged: the new process may have read from it, so it cannot be resumed
// here) or fallback (never sent: the reader clears the deadline and serves on, and
// the drain that follows sends GOAWAY, today's path).
//
// hoState moves forward only, each transition by CAS, and whoever moves it out of
// hoRequested reports the connection to the run exactly once (reader or teardown
// through the events channel, HandOff directly): a connection is never sent twice
// nor forgotten.
const (
	hoNone      int32 = iota
	hoRequested       // asked to stop at a quiet point
	hoQuiet           // stopped: waiting for the verdict
	hoReleased        // fell back before it was quiet: serves on
	hoGone            // torn down before it was quiet
)

type hoVerdict uint8

const (
	verdictMoved hoVerdict = iota + 1
	verdictLost
	verdictFallback
)

// handoffWave is how many connections a handoff has asked and not yet settled at
// most: two batches, so that the next one gathers while one is sent.
const handoffWave = 2 * handoff.MaxFDs

// quietPoll is how often a reader waiting for its quiet point looks again: the wait
// is for commits (a few ms) and a flush, once per connection per upgrade.
const quietPoll = time.Millisecond

type handoffRun struct {
	deadline time.Time
	events   chan hoEvent // one per connection asked, buffered for all of them
}

type hoEvent struct {
	c      *Conn
	quiet  bool
	reason string // why it fell back, when not quiet
}

// BatchSender sends one batch of descriptors with their state messages and returns
// once the receiver acknowledged it (*handoff.Channel).
type BatchSender interface {
	Send(fds []int, states [][]byte) error
}

// HandoffResult is what a handoff did.
type HandoffResult struct {
	Moved    int            // acknowledged by the new process
	Lost     int            // sent, not acknowledged: closed (contract step 3)
	Fallback map[string]int // by reason: left to the drain
	Batches  int
	Duration time.Duration
	Err      error // what broke the channel, if it broke
}

// FallenBack is how many connections fell back, whatever the reason.
func (r HandoffResult) FallenBack() int {
	n := 0
	for _, v := range r.Fallback {
		n += v
	}
	return n
}

// HandOff moves every active connection to the new process through ch, each at its
// quiet point; a connection not quiet within timeout falls back, as does every one
// not yet sent once ch fails. Call it after the listener is closed and before Drain,
// which then finds only the connections that fell back. It returns once every
// connection asked is moved (its teardown done), lost, or serving again.
func (m *Manager) HandOff(ctx context.Context, ch BatchSender, timeout time.Duration) HandoffResult {
	start := time.Now()
	res := HandoffResult{Fallback: map[string]int{}}
	conns := m.reg.snapshot(nil)
	run := &handoffRun{deadline: start.Add(timeout), events: make(chan hoEvent, len(conns))}
	// Connections are asked in waves, a few batches' worth at a time, not all at
	// once: a connection stops reading from when it is asked until its batch is
	// acknowledged, so under load each one pauses for about one batch instead of
	// for the whole handoff.
	var asked []*Conn
	next, pending := 0, 0
	ask := func() {
		for pending < handoffWave && next < len(conns) {
			c := conns[next]
			conns[next] = nil
			next++
			if reason := c.requestHandoff(run); reason != "" {
				res.Fallback[reason]++
				continue
			}
			asked = append(asked, c)
			pending++
		}
	}
	// release ends the wait for every connection not yet quiet: each one the CAS
	// takes is counted here; the others report themselves. Those never asked stay
	// as they are, counted for the same reason.
	release := func(reason string) {
		for _, c := range asked {
			if c.hoState.CompareAndSwap(hoRequested, hoReleased) {
				res.Fallback[reason]++
				pending--
			}
		}
		res.Fallback[reason] += len(conns) - next
		next = len(conns)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var finished []*Conn // moved or lost: wait for their teardown
	var batch []*Conn
	broken := false
	take := func(ev hoEvent) {
		pending--
		switch {
		case !ev.quiet:
			res.Fallback[ev.reason]++
		case broken:
			ev.c.hoVerdict <- verdictFallback
			res.Fallback["channel"]++
		default:
			batch = append(batch, ev.c)
		}
	}
	released := false
	for pending > 0 || next < len(conns) {
		if !released {
			ask() // keep a wave asked, whatever settled since
		}
		if pending == 0 {
			continue // that wave could not move at all: ask the next
		}
		if released {
			take(<-run.events)
		} else {
			select {
			case ev := <-run.events:
				take(ev)
			case <-timer.C:
				release("timeout")
				released = true
			case <-ctx.Done():
				release("interrupted")
				released = true
			}
		}
		// Whatever else is quiet already goes in the same batch.
	more:
		for pending > 0 && len(batch) < handoff.MaxFDs {
			select {
			case ev := <-run.events:
				take(ev)
			default:
				break more
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := m.sendBatch(ch, batch); err != nil {
			res.Err = err
			broken = true
			res.Lost += len(batch)
			for _, c := range batch {
				c.hoVerdict <- verdictLost
			}
			if !released {
				release("channel")
				released = true
			}
		} else {
			res.Batches++
			res.Moved += len(batch)
			for _, c := range batch {
				c.hoVerdict <- verdictMoved
			}
		}
		finished = append(finished, batch...)
		batch = batch[:0:0]
	}
	for _, c := range finished {
		<-c.done
	}
	res.Duration = time.Since(start)
	return res
}

func (m *Manager) sendBatch(ch BatchSender, batch []*Conn) error {
	fds := make([]int, 0, len(batch))
	states := make([][]byte, 0, len(batch))
	for _, c := range batch {
		// The socket stays open until the verdict, so its descriptor is valid for
		// the send; Control only reads it.
		c.rc.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
		states = append(states, c.hoMsg)
	}
	return ch.Send(fds, states)
}

// requestHandoff asks c's reader to stop at its quiet point; it returns why c
// cannot move ("" when asked).
func (c *Conn) requestHandoff(run *handoffRun) string {
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
	c.hoVerdict = make(chan hoVerdict, 1)
	c.hoState.Store(hoRequested)
	c.ho.Store(run)
	c.nc.SetReadDeadline(aLongTimeAgo) // wakes the reader; the socket stays open
	return ""
}

// quiesce runs on the reader once the handoff's deadline stopped it. It returns
// true when the connection has left this process (moved or lost, torn down) and
// false when the reader must serve on.
func (c *Conn) quiesce() bool {
	run := c.ho.Load()
	// The reader is stopped on purpose: the reaper must not time the client out.
	c.paused.Store(true)
	for {
		if c.hoState.Load() != hoRequested { // released: the handoff is over for c
			c.resumeReading()
			return false
		}
		quiet, closing := c.tryQuiet()
		if quiet {
			break
		}
		if closing || time.Now().After(run.deadline) {
			reason := "busy" // reports in flight or output pending past the timeout
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
		c.endHandoff(ReasonHandoff)
		return true
	case verdictLost:
		c.endHandoff(ReasonHandoffLost)
		return true
	}
	c.wmu.Lock()
	if c.hoClosing {
		c.closing, c.hoClosing = false, false
	}
	c.wmu.Unlock()
	c.resumeReading()
	return false
}

// tryQuiet checks for the quiet point and, at it, closes the output (under wmu) and
// encodes the state. closing says c is closing for another reason: it cannot move.
func (c *Conn) tryQuiet() (quiet, closing bool) {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return false, true
	}
	if c.flushing || (c.out != nil && len(*c.out) > 0) || c.answered.Load() != c.reportsRead {
		c.wmu.Unlock()
		return false, false
	}
	if !c.hoState.CompareAndSwap(hoRequested, hoQuiet) {
		c.wmu.Unlock()
		return false, false // released meanwhile; the caller sees it
	}
	c.closing, c.hoClosing = true, true // nothing more is queued: no report is in flight
	c.wmu.Unlock()
	c.hoMsg = c.encodeState()
	return true, false
}

// encodeState is c's state at its quiet point, on the reader.
func (c *Conn) encodeState() []byte {
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

// resumeReading undoes the stop: the reader serves on in this process.
func (c *Conn) resumeReading() {
	c.wmu.Lock()
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
	c.ho.Store(nil)
	c.paused.Store(false)
}

// endHandoff tears down a connection that left: the new process holds the socket
// (or held it and died), so closing this copy sends nothing to the client.
func (c *Conn) endHandoff(reason CloseReason) {
	c.wmu.Lock()
	c.reason = reason
	c.wmu.Unlock()
	c.releaseSlot()
	c.teardown()
}
