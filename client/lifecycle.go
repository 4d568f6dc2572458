package client

import "fmt"

// state is where a Client is in its life. It only moves forward, along the edges
// lifecycle.to accepts:
//
//	dialing → open → closing → drained → stopped
//	           ↓        ↑  ↘________________↗
//	         failed ────┘
type state uint8

const (
	stateDialing state = iota // inside Dial: no connection has been installed yet
	stateOpen                 // taking reports
	stateFailed               // a reconnect was refused for good: reports fail with lifecycle.failErr
	stateClosing              // Close was called: no new reports; those in flight may still be acked
	stateDrained              // closing, and no report is left: Close need not wait any longer
	stateStopped              // Close stopped waiting: connections are torn down, leftovers fail with ErrClosed
)

var stateNames = [...]string{
	stateDialing: "dialing", stateOpen: "open", stateFailed: "failed",
	stateClosing: "closing", stateDrained: "drained", stateStopped: "stopped",
}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// lifecycle is a Client's state and what waits on it. Guarded by the Client's mu,
// except the two channels, which goroutines outside the lock select on.
type lifecycle struct {
	state state
	// failErr is the final refusal (the server's *ServerError) that made the
	// client fail. It outlives stateFailed: after Close, reports still fail with
	// it rather than being resent, and no connection is attempted any more. It can
	// also be set while closing, when a reconnect made to drain is refused.
	failErr error

	closing chan struct{} // closed on entering stateClosing: ends window waits
	drained chan struct{} // closed on entering stateDrained: what Close waits for
}

func newLifecycle() lifecycle {
	return lifecycle{closing: make(chan struct{}), drained: make(chan struct{})}
}

// to moves to next if the edge exists and says whether it did; the channels of the
// states entered are closed here, so each is closed exactly once.
func (l *lifecycle) to(next state) bool {
	ok := false
	switch l.state {
	case stateDialing:
		ok = next == stateOpen
	case stateOpen:
		ok = next == stateFailed || next == stateClosing
	case stateFailed:
		ok = next == stateClosing
	case stateClosing:
		ok = next == stateDrained || next == stateStopped
	case stateDrained:
		ok = next == stateStopped
	}
	if !ok {
		return false
	}
	l.state = next
	switch next {
	case stateClosing:
		close(l.closing)
	case stateDrained:
		close(l.drained)
	}
	return true
}

// fail records a final refusal (the first one wins) and leaves stateOpen for
// stateFailed; while closing, the state stays but the refusal still counts.
func (l *lifecycle) fail(err error) {
	if l.failErr == nil {
		l.failErr = err
	}
	l.to(stateFailed)
}

// refusal is why a new report is refused now, or nil.
func (l *lifecycle) refusal() error {
	switch {
	case l.state >= stateClosing:
		return ErrClosed
	case l.failErr != nil:
		return l.failErr
	}
	return nil
}

// wantsConnection says whether a connection is worth having: to take reports, or
// to drain those in flight while closing. Never after a final refusal.
func (l *lifecycle) wantsConnection() bool {
	return l.failErr == nil && (l.state == stateOpen || l.state == stateClosing)
}

// closingDrained moves from closing to drained once no report is left; n is how
// many are left.
func (l *lifecycle) closingDrained(n int) {
	if n == 0 && l.state == stateClosing {
		l.to(stateDrained)
	}
}
