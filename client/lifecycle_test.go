package client

import (
	"errors"
	"fmt"
	"testing"
)

func chanClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestLifecycleTransitions checks every edge: only the documented ones are taken.
func TestLifecycleTransitions(t *testing.T) {
	allowed := map[[2]state]bool{
		{stateDialing, stateOpen}:    true,
		{stateOpen, stateFailed}:     true,
		{stateOpen, stateClosing}:    true,
		{stateFailed, stateClosing}:  true,
		{stateClosing, stateDrained}: true,
		{stateClosing, stateStopped}: true,
		{stateDrained, stateStopped}: true,
	}
	// reach walks the allowed edges from dialing to from.
	path := map[state][]state{
		stateDialing: nil,
		stateOpen:    {stateOpen},
		stateFailed:  {stateOpen, stateFailed},
		stateClosing: {stateOpen, stateClosing},
		stateDrained: {stateOpen, stateClosing, stateDrained},
		stateStopped: {stateOpen, stateClosing, stateStopped},
	}
	for from := stateDialing; from <= stateStopped; from++ {
		for to := stateDialing; to <= stateStopped; to++ {
			t.Run(fmt.Sprintf("%s-%s", from, to), func(t *testing.T) {
				l := newLifecycle()
				for _, st := range path[from] {
					if !l.to(st) {
						t.Fatalf("could not reach %s", st)
					}
				}
				ok := l.to(to)
				if ok != allowed[[2]state{from, to}] {
					t.Fatalf("to(%s) from %s = %v", to, from, ok)
				}
				want := from
				if ok {
					want = to
				}
				if l.state != want {
					t.Fatalf("state %s, want %s", l.state, want)
				}
				// The channels say whether closing and drained were ever entered.
				closing := want >= stateClosing
				if chanClosed(l.closing) != closing {
					t.Fatalf("in %s: closing channel closed = %v", want, !closing)
				}
				drained := want == stateDrained || (want == stateStopped && from == stateDrained)
				if chanClosed(l.drained) != drained {
					t.Fatalf("in %s: drained channel closed = %v", want, !drained)
				}
			})
		}
	}
}

func TestLifecycleRefusalAndConnection(t *testing.T) {
	refused := errors.New("unauthorized")
	l := newLifecycle()
	if l.wantsConnection() {
		t.Fatal("a dialing client's manager wants a connection: Dial makes it")
	}
	l.to(stateOpen)
	if err := l.refusal(); err != nil || !l.wantsConnection() {
		t.Fatalf("open: refusal %v, wants connection %v", err, l.wantsConnection())
	}

	l.fail(refused)
	l.fail(errors.New("a later refusal"))
	if l.state != stateFailed || l.failErr != refused {
		t.Fatalf("after fail: %s, %v; want failed with the first refusal", l.state, l.failErr)
	}
	if err := l.refusal(); err != refused || l.wantsConnection() {
		t.Fatalf("failed: refusal %v, wants connection %v", err, l.wantsConnection())
	}

	// Close after a final refusal: new reports get ErrClosed, but the client
	// still never reconnects.
	l.to(stateClosing)
	if err := l.refusal(); !errors.Is(err, ErrClosed) || l.wantsConnection() || l.failErr != refused {
		t.Fatalf("closing after failed: refusal %v, wants connection %v, failErr %v", err, l.wantsConnection(), l.failErr)
	}
}

func TestLifecycleFailWhileClosing(t *testing.T) {
	// A reconnect made to drain reports during Close is refused for good: the
	// state stays closing, the refusal is kept for the reports left.
	l := newLifecycle()
	l.to(stateOpen)
	l.to(stateClosing)
	if !l.wantsConnection() {
		t.Fatal("closing with reports left does not want a connection")
	}
	refused := errors.New("token revoked")
	l.fail(refused)
	if l.state != stateClosing || l.failErr != refused || l.wantsConnection() {
		t.Fatalf("after fail while closing: %s, %v, wants connection %v", l.state, l.failErr, l.wantsConnection())
	}
}

func TestLifecycleClosingDrained(t *testing.T) {
	l := newLifecycle()
	l.to(stateOpen)
	l.closingDrained(0)
	if l.state != stateOpen {
		t.Fatalf("an open client with no reports moved to %s", l.state)
	}
	l.to(stateClosing)
	l.closingDrained(2)
	if l.state != stateClosing || chanClosed(l.drained) {
		t.Fatal("drained with reports left")
	}
	l.closingDrained(0)
	if l.state != stateDrained || !chanClosed(l.drained) {
		t.Fatalf("closing with no report left: %s, drained channel closed %v", l.state, chanClosed(l.drained))
	}
	l.closingDrained(0) // again: no second close of the channel
	if l.wantsConnection() {
		t.Fatal("a drained client wants a connection")
	}
	if !l.to(stateStopped) || !errors.Is(l.refusal(), ErrClosed) {
		t.Fatal("drained → stopped")
	}
}
