package handoff

import (
	"sync/atomic"
	"time"
)

// The sending side stops each connection at a quiet point, on its own reader,
// before Drive sends it; Point is that per-connection state machine, shared by
// native (internal/conn) and legacy (internal/legacy) connections, which differ
// only in what their quiet point is (Conn).
//
// A connection asked to move (Conn.HandoffRequest) gets a read deadline in the
// past, which wakes its reader out of its read without closing the socket. The
// reader (Quiesce) then waits until every report it submitted is answered and
// every byte of output is written; it then marks the connection closing, under the
// connection's lock, so that nothing more is queued (the reaper's errors included),
// keeps any partial frame it holds and reports itself quiet. From then on neither
// side of the old process touches the socket until the verdict: Moved (the new
// process acknowledged it: the socket is closed here without a shutdown, so no
// FIN), Lost (sent, never acknowledged: the new process may have read from it, so
// it cannot be resumed here) or Fallback (never sent: the reader clears the
// deadline and serves on, and the drain that follows takes it: GOAWAY for native
// connections, served until drain.timeout for legacy ones).
//
// The state moves forward only, each transition by CAS, and whoever moves it out of
// requested reports the connection to the run exactly once (the reader or the
// teardown through the run's events, Drive directly when it releases it): a
// connection is never sent twice nor forgotten.
const (
	stateNone      int32 = iota
	stateRequested       // asked to stop at a quiet point
	stateQuiet           // stopped: waiting for the verdict
	stateReleased        // fell back before it was quiet: serves on
	stateGone            // torn down before it was quiet
)

// Verdict is how a quiet connection's move ended.
type Verdict uint8

const (
	Moved    Verdict = iota + 1 // acknowledged by the new process
	Lost                        // sent, not acknowledged: closed, as a crash would
	Fallback                    // never sent: serves on here
)

// quietPoll is how often a reader waiting for its quiet point looks again: the wait
// is for commits (a few ms) and a flush, once per connection per upgrade.
const quietPoll = time.Millisecond

// Conn is a connection Drive can move. Its reader calls Point.Quiesce when the
// handoff's read deadline wakes it (Point.Asked), and its teardown calls
// Point.Closed.
type Conn interface {
	// HandoffPoint returns the connection's Point.
	HandoffPoint() *Point
	// HandoffRequest asks the connection to stop at its quiet point: under its own
	// lock it checks that it can move, arms its Point (Point.Request) and wakes its
	// reader with a read deadline in the past; the socket stays open. It returns
	// why the connection cannot move ("" when asked): the reason it falls back for.
	HandoffRequest(run *Run) string
	// HandoffQuiet, on the reader, checks for the quiet point and, at it, takes it
	// (Point.TakeQuiet) and marks the output closed, both under the connection's
	// lock, so that nothing more is queued. closing says the connection is closing
	// for another reason: it cannot move.
	HandoffQuiet() (quiet, closing bool)
	// HandoffState is the connection's state at its quiet point (State.Encode), on
	// the reader.
	HandoffState() []byte
	// HandoffResume undoes the stop, on the reader: the output closed by the quiet
	// point (if it was taken) opens again and the reader serves on here.
	HandoffResume()
	// HandoffEnd ends a connection that left this process (Moved or Lost), on the
	// reader: the new process holds the socket (or held it and died), so it is
	// closed without a shutdown and sends nothing to the client.
	HandoffEnd(v Verdict)
	// HandoffFD is the socket's descriptor; the socket stays open until the
	// verdict, so it is valid for the send.
	HandoffFD() (int, error)
	// HandoffDone is closed once the connection's teardown is done.
	HandoffDone() <-chan struct{}
}

// Point is where a connection is in a handoff. Its zero value is a connection
// never asked; a connection holds one for its life.
type Point struct {
	run     atomic.Pointer[Run] // the run that asked; nil once the reader serves on
	state   atomic.Int32
	verdict chan Verdict // made by Request, before run is stored
	msg     []byte       // the encoded state, written by the reader before its quiet event
}

// Request arms p for run. The connection calls it under its lock, having checked
// that it can move, and then wakes its reader.
func (p *Point) Request(run *Run) {
	p.verdict = make(chan Verdict, 1)
	p.run.Store(run)
	p.state.Store(stateRequested)
}

// Asked reports whether a handoff asked the connection to stop: a read deadline
// its reader meets is then the handoff's wake-up, not a timeout.
func (p *Point) Asked() bool { return p.run.Load() != nil }

// TakeQuiet marks the connection quiet, under its lock, at its quiet point; false
// means it was released meanwhile (Quiesce sees it).
func (p *Point) TakeQuiet() bool { return p.state.CompareAndSwap(stateRequested, stateQuiet) }

// Quiesce runs on c's reader (p is c's Point) once the handoff's deadline stopped
// it. It returns true when c has left this process (moved or lost: HandoffEnd was
// called) and false when the reader must serve on (HandoffResume was called).
func (p *Point) Quiesce(c Conn) bool {
	run := p.run.Load()
	for {
		if p.state.Load() != stateRequested { // released: the handoff is over for c
			p.resume(c)
			return false
		}
		quiet, closing := c.HandoffQuiet()
		if quiet {
			break
		}
		if closing || !time.Now().Before(run.deadline) {
			reason := "busy" // reports in flight or output pending past the deadline
			if closing {
				reason = "closing"
			}
			if p.state.CompareAndSwap(stateRequested, stateReleased) {
				run.events <- event{c: c, reason: reason}
			}
			p.resume(c)
			return false
		}
		time.Sleep(quietPoll)
	}
	p.msg = c.HandoffState()
	run.events <- event{c: c, quiet: true}
	switch v := <-p.verdict; v {
	case Moved, Lost:
		c.HandoffEnd(v)
		return true
	}
	p.resume(c)
	return false
}

func (p *Point) resume(c Conn) {
	p.msg = nil
	c.HandoffResume()
	p.run.Store(nil)
}

// Closed is called by c's teardown (p is c's Point), after the connection is
// marked closing under its lock, so that no request arms it any more: a connection
// asked and torn down before its quiet point (the peer left, the reaper cut it)
// falls back for "closed" instead of keeping the run waiting.
func (p *Point) Closed(c Conn) {
	if p.state.CompareAndSwap(stateRequested, stateGone) {
		p.run.Load().events <- event{c: c, reason: "closed"}
	}
}
