package handoff

import (
	"sync"
	"sync/atomic"
	"syscall"
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
// Point.Closed. What differs between kinds is the request's checks, what "idle"
// means and the state; the quiet point itself is the Point's.
type Conn interface {
	// HandoffPoint returns the connection's Point.
	HandoffPoint() *Point
	// HandoffRequest asks the connection to stop at its quiet point: under its own
	// lock it checks that it can move, arms its Point (Point.Request) and wakes its
	// reader with a read deadline in the past (WakeNow); the socket stays open. It
	// returns why the connection cannot move ("" when asked): the reason it falls
	// back for.
	HandoffRequest(run *Run) string
	// HandoffOutput is the lock over the connection's output and its closing flag
	// (set: nothing more is queued). The quiet point is taken under that lock, and
	// sets the flag until the verdict.
	HandoffOutput() (mu sync.Locker, closing *bool)
	// HandoffIdle, under that lock, says that every report read is answered and no
	// output is queued or being written.
	HandoffIdle() bool
	// HandoffState is the connection's state at its quiet point, on the reader.
	HandoffState() *State
	// HandoffServeOn is the connection's part of serving on here, on the reader,
	// once the quiet point's hold on its output is undone: its read deadline
	// cleared (or, closing for another reason, bounded) and its clocks restarted.
	HandoffServeOn(closing bool)
	// HandoffLeft records, under the output lock, that the connection left this
	// process (Moved or Lost): the new process holds the socket (or held it and
	// died), so the reader, once Quiesce returns true, closes it without a shutdown
	// and sends nothing to the client.
	HandoffLeft(v Verdict)
	// HandoffFD is the socket's descriptor; the socket stays open until the
	// verdict, so it is valid for the send.
	HandoffFD() (int, error)
	// HandoffDone is closed once the connection's teardown is done.
	HandoffDone() <-chan struct{}
	// HandoffLastRead is when the connection last read bytes (mono.Now()): the
	// driver asks one that read lately only when it will not wait for another
	// batch (activeWithin).
	HandoffLastRead() int64
}

// WakeNow is a read deadline in the past: it wakes a blocked read at once, and the
// socket stays open.
var WakeNow = time.Unix(1, 0)

// RawFD reads a socket's descriptor (Control only reads it).
func RawFD(rc syscall.RawConn) (int, error) {
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return 0, err
	}
	return fd, nil
}

// Point is where a connection is in a handoff. Its zero value is a connection
// never asked; a connection holds one for its life.
type Point struct {
	run     atomic.Pointer[Run] // the run that asked; nil once the reader serves on
	state   atomic.Int32
	verdict chan Verdict // made by Request, before run is stored
	msg     []byte       // the encoded state, written by the reader before its quiet event
	asked   time.Time    // when Request armed it: the connection stops reading from then on
	// held: the quiet point set the connection's closing flag (under its output
	// lock); serving on clears it again.
	held bool
}

// Request arms p for run. The connection calls it under its lock, having checked
// that it can move, and then wakes its reader.
func (p *Point) Request(run *Run) {
	p.verdict = make(chan Verdict, 1)
	p.asked = time.Now()
	p.run.Store(run)
	p.state.Store(stateRequested)
}

// Asked reports whether a handoff asked the connection to stop: a read deadline
// its reader meets is then the handoff's wake-up, not a timeout.
func (p *Point) Asked() bool { return p.run.Load() != nil }

// Held reports, under the connection's output lock, that the quiet point holds
// the connection: a close must not touch the socket the new process may own, the
// verdict decides.
func (p *Point) Held() bool { return p.held }

// quiet checks for c's quiet point and, at it, takes it and closes c's output,
// under c's output lock, so that nothing more is queued. closing says c is closing
// for another reason: it cannot move.
func (p *Point) quiet(c Conn) (quiet, closing bool) {
	mu, cl := c.HandoffOutput()
	mu.Lock()
	defer mu.Unlock()
	if *cl {
		return false, true
	}
	if !c.HandoffIdle() || !p.state.CompareAndSwap(stateRequested, stateQuiet) {
		return false, false // busy, or released meanwhile (Quiesce sees it)
	}
	*cl, p.held = true, true
	return true, false
}

// Quiesce runs on c's reader (p is c's Point) once the handoff's deadline stopped
// it. It returns true when c has left this process (moved or lost: HandoffLeft was
// called; the reader tears it down) and false when the reader must serve on (HandoffServeOn was called).
func (p *Point) Quiesce(c Conn) bool {
	run := p.run.Load()
	for {
		if p.state.Load() != stateRequested { // released: the handoff is over for c
			p.resume(c)
			return false
		}
		quiet, closing := p.quiet(c)
		if quiet {
			break
		}
		if closing || !time.Now().Before(run.deadline) {
			reason := ReasonBusy
			if closing {
				reason = ReasonClosing
			}
			if p.state.CompareAndSwap(stateRequested, stateReleased) {
				run.events <- event{c: c, reason: reason}
			}
			p.resume(c)
			return false
		}
		time.Sleep(quietPoll)
	}
	// A State of strings, numbers and bytes always encodes; should it not, the empty
	// message makes the new process reject this one connection, naming why.
	p.msg, _ = c.HandoffState().encode(run.version)
	run.events <- event{c: c, quiet: true}
	switch v := <-p.verdict; v {
	case Moved, Lost:
		mu, _ := c.HandoffOutput()
		mu.Lock()
		c.HandoffLeft(v)
		mu.Unlock()
		return true
	}
	p.resume(c)
	return false
}

// resume undoes the stop: the output the quiet point closed (if it was taken)
// opens again and c's reader serves on here.
func (p *Point) resume(c Conn) {
	p.msg = nil
	mu, cl := c.HandoffOutput()
	mu.Lock()
	if p.held {
		*cl, p.held = false, false
	}
	closing := *cl
	mu.Unlock()
	c.HandoffServeOn(closing)
	p.run.Store(nil)
}

// Closed is called by c's teardown (p is c's Point), after the connection is
// marked closing under its lock, so that no request arms it any more: a connection
// asked and torn down before its quiet point (the peer left, the reaper cut it)
// falls back for "closed" instead of keeping the run waiting.
func (p *Point) Closed(c Conn) {
	if p.state.CompareAndSwap(stateRequested, stateGone) {
		p.run.Load().events <- event{c: c, reason: ReasonClosed}
	}
}
