// Package reaper runs a server's periodic pass over its connections from one goroutine and one ticker.
package reaper

import (
	"context"
	"time"
)

// Bounds of the period: a pass over many connections is not run more often than
// every 10 ms, and a deadline is never checked less often than every second.
const (
	minInterval = 10 * time.Millisecond
	maxInterval = time.Second
)

// Reaper calls its pass until Stop. The read and write paths only store
// timestamps; the pass compares them, so no timer is armed per connection.
type Reaper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Start calls pass every quarter of shortest() (so a connection is cut within
// about a quarter of its timeout after it expired), between 10 ms and 1 s.
// shortest is read again after each pass: a reload that shortens a timeout is
// followed.
func Start(shortest func() time.Duration, pass func()) *Reaper {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reaper{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		interval := Interval(shortest())
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pass()
			if next := Interval(shortest()); next != interval {
				interval = next
				t.Reset(interval)
			}
		}
	}()
	return r
}

// Interval is the period for a shortest timeout d.
func Interval(d time.Duration) time.Duration {
	return min(max(d/4, minInterval), maxInterval)
}

// Stop stops the passes and returns once none runs.
func (r *Reaper) Stop() {
	r.cancel()
	<-r.done
}
