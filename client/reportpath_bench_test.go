package client

import (
	"sync"
	"testing"
)

// newPathClient is a Client with one installed connection and no goroutines or
// socket behind it: what it queues stays in the session's output, and the test
// plays the reader by calling sessionEvents. It measures the library's own work
// per report, without system calls or a server.
func newPathClient(tb testing.TB, window int) (*Client, *session) {
	tb.Helper()
	opts := Options{Addr: "127.0.0.1:1", ClientID: "path", MaxInFlight: window}
	if err := opts.normalize(); err != nil {
		tb.Fatal(err)
	}
	c := &Client{
		opts:   opts,
		window: newWindow(opts.MaxInFlight),
		life:   newLifecycle(),
		out:    newOutbox(opts.FirstSeq, opts.MaxInFlight, opts.MinBackoff, opts.MaxBackoff),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	s := &session{owner: c, wg: &sync.WaitGroup{}, kick: make(chan struct{}, 1), done: make(chan struct{}), limit: window}
	c.life.to(stateOpen)
	c.conns.cur = s
	c.conns.live = append(c.conns.live, s)
	return c, s
}

// ackAll acks every report in flight on s as one ACK_RANGE with one range, the
// way the server acks a batch, and empties s's output (the frames "written").
func ackAll(c *Client, s *session, evs []sessionEvent) []sessionEvent {
	s.wmu.Lock()
	s.out = s.out[:0]
	s.wmu.Unlock()
	c.mu.Lock()
	first, last := c.out.pending.lo, c.out.pending.next-1
	c.mu.Unlock()
	evs = append(evs[:0], sessionEvent{kind: eventAcked, seq: first, last: last})
	c.sessionEvents(s, evs)
	return evs
}

// BenchmarkReportPath is the library's CPU per report on the load generator's
// path, without the socket: Go, the record and its frame, the ACK range found
// and completed, the window slot freed and done called, which issues the next
// report. One op is one report; window reports are acked per ACK_RANGE.
func BenchmarkReportPath(b *testing.B) {
	for _, bc := range []struct {
		name         string
		window, size int
	}{{"w8x256", 8, 256}, {"w32x128", 32, 128}} {
		b.Run(bc.name, func(b *testing.B) {
			c, s := newPathClient(b, bc.window)
			payload := make([]byte, bc.size)
			var n, budget int
			var done func(uint64, error)
			done = func(_ uint64, err error) {
				if err != nil {
					b.Fatal(err)
				}
				n++
				if n <= budget {
					if err := c.Go(payload, done); err != nil {
						b.Fatal(err)
					}
				}
			}
			budget = b.N
			for range min(bc.window, b.N) {
				if err := c.Go(payload, done); err != nil {
					b.Fatal(err)
				}
			}
			var evs []sessionEvent
			b.ReportAllocs()
			b.ResetTimer()
			for n < b.N {
				evs = ackAll(c, s, evs)
			}
			b.StopTimer()
			if got := c.window.inFlight(); got > bc.window {
				b.Fatalf("%d in flight, window %d", got, bc.window)
			}
		})
	}
}
