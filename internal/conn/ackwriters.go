package conn

import (
	"runtime"
	"sync"
)

// ackWriters is the Manager's small fixed set of goroutines that write the output
// a commit queues for connections whose reader is waiting on its socket. Starting
// a flusher goroutine per connection per commit costs its creation, its exit, its
// first stack growth and a schedule each time; a persistent writer takes a batch of
// connections per wake instead.
//
// A writer never waits for a socket: it writes what the socket takes at once
// (writeNow). Whatever the socket does not take, a write error, a closing or stalled
// connection, and TLS connections (never queued here) go to the flusher path of
// write.go, so one client that does not read holds no other's ACKs back.
//
// Lock order: a producer holds the connection's wmu while it queues (queuedLocked),
// so wmu comes before mu, and a writer never holds mu while it takes a wmu.
type ackWriters struct {
	mu sync.Mutex
	// queue holds the connections handed over, each with flushing set for it;
	// free holds the emptied slices writers give back, so a swap allocates nothing.
	queue   []*Conn
	free    [][]*Conn
	idle    int           // writers parked on wake
	wake    chan struct{} // one token wakes one parked writer
	stopped bool
	wg      sync.WaitGroup
}

// startAckWriters starts n writers (GOMAXPROCS when n <= 0).
func startAckWriters(n int) *ackWriters {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	w := &ackWriters{wake: make(chan struct{}, n)}
	w.wg.Add(n)
	for range n {
		go w.run()
	}
	return w
}

// hand queues c, whose flushing its caller has just set, for a writer; false once
// the writers are stopped (the caller then starts a flusher). Caller holds c.wmu.
func (w *ackWriters) hand(c *Conn) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, c)
	// A writer that is awake takes the queue on its next turn: a token is sent only
	// when the queue was empty, so a commit answering 1,000 connections wakes at
	// most one writer per batch a writer takes.
	if len(w.queue) == 1 && w.idle > 0 {
		w.idle--
		w.wake <- struct{}{} // buffered for every writer: never blocks
	}
	w.mu.Unlock()
	return true
}

// run is one writer: it takes the whole queue, writes each connection's output,
// and parks when the queue is empty. After stop it empties the queue, then exits.
func (w *ackWriters) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.stopped {
				w.mu.Unlock()
				return
			}
			w.idle++
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		batch := w.queue
		w.queue = nil
		if k := len(w.free) - 1; k >= 0 {
			w.queue, w.free = w.free[k], w.free[:k]
		}
		w.mu.Unlock()
		for i, c := range batch {
			c.flushQueued()
			batch[i] = nil // the connection may go: the slice must not keep it
		}
		w.mu.Lock()
		w.free = append(w.free, batch[:0])
		w.mu.Unlock()
	}
}

// stop stops the writers once they have written what is queued; connections
// handed over later get flushers. It waits for the writers to exit.
func (w *ackWriters) stop() {
	w.mu.Lock()
	w.stopped = true
	for ; w.idle > 0; w.idle-- {
		w.wake <- struct{}{}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// flushQueued is a writer's turn at c (flushing is set for it): one write of
// everything pending, as much as the socket takes without waiting, as flushHeld
// does for the reader. What the socket does not take goes to a flusher; what is
// queued meanwhile goes to the back of the writers' queue.
func (c *Conn) flushQueued() {
	c.wmu.Lock()
	if c.closing || c.stalled {
		c.wmu.Unlock()
		spawn(c, (*Conn).flush) // it ends the connection: it may wait
		return
	}
	buf := c.out
	c.out = nil
	if buf == nil || len(*buf) == 0 {
		c.flushing = false
		c.drainedLocked()
		c.wmu.Unlock()
		putWriteBuf(buf)
		return
	}
	if !c.writeWhatFits(buf) {
		return
	}
	switch {
	case c.closing || c.stalled:
		c.wmu.Unlock()
		spawn(c, (*Conn).flush)
		return
	case c.out != nil && len(*c.out) > 0:
		// Queued while this write was on: back of the queue, so that a connection
		// answered often does not keep a writer from the others.
		if !c.m.acks.hand(c) {
			spawn(c, (*Conn).flush)
		}
		c.wmu.Unlock()
		return
	}
	c.flushing = false
	c.drainedLocked()
	c.wmu.Unlock()
}
