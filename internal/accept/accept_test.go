package accept

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// flakyListener fails its first accepts with a temporary error, then hands out
// conns, then reports itself closed.
type flakyListener struct {
	net.Listener
	fails int
	conns chan net.Conn
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, errors.New("accept4: too many open files")
	}
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}

// An accept error is logged and retried, not returned; a closed listener ends the
// loop with nil; every accepted connection reaches handle.
func TestLoopRetriesThenEndsOnClose(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	l := &flakyListener{fails: 2, conns: make(chan net.Conn, 1)}
	l.conns <- a
	close(l.conns)
	var handled atomic.Int32
	done := make(chan error, 1)
	go func() { done <- Loop(l, zap.New(core), func(net.Conn) { handled.Add(1) }, zap.String("listener", "x")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Loop returned %v, want nil on a closed listener", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return after the listener closed")
	}
	if handled.Load() != 1 {
		t.Fatalf("handled %d connections, want 1", handled.Load())
	}
	if got := logs.FilterMessage("accept failed").FilterField(zap.String("listener", "x")).Len(); got != 2 {
		t.Fatalf("%d 'accept failed' lines with the caller's fields, want 2", got)
	}
}
