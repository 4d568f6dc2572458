package handoff

import (
	"context"
	"fmt"
	"time"
)

// batchSize is the most connections a batch carries, and wave how many a handoff
// has asked and not yet settled at most: two batches, so that the next one gathers
// while one is sent. A connection stops reading from when it is asked until its
// batch is acknowledged, so the batch, not the message's limit (MaxFDs), sets how
// long each client's reports wait during an upgrade. Measured at 150k reports/s
// over 1,000 connections, 3 upgrades per 10 s (docs/PERFORMANCE.md): batches of 32 took the ack
// p99 during upgrades from a median 1.78× steady (batches of 253) to 1.27×, and
// 15,000 idle connections still move in 0.52–0.57 s (0.47–0.49 s).
const (
	batchSize = 32
	wave      = 2 * batchSize
)

// BatchSender sends one batch of descriptors with their state messages and returns
// once the receiver acknowledged it (*Channel).
type BatchSender interface {
	Send(fds []int, states [][]byte) error
}

// Result is what a handoff did.
type Result struct {
	Moved    int            // acknowledged by the new process
	Lost     int            // sent, not acknowledged: closed (contract step 3)
	Fallback map[string]int // by reason: left to the drain
	Batches  int
	Duration time.Duration
	Err      error // what broke the channel, if it broke
}

// FallenBack is how many connections fell back, whatever the reason.
func (r Result) FallenBack() int {
	n := 0
	for _, v := range r.Fallback {
		n += v
	}
	return n
}

// Run is one handoff's rendezvous with the connections it asked.
type Run struct {
	deadline time.Time
	events   chan event // one per connection asked, buffered for all of them
}

// event is a connection asked that left requested: quiet, or fallen back for reason.
type event struct {
	c      Conn
	quiet  bool
	reason string
}

// Drive moves conns to the new process through ch, each at its quiet point; a
// connection not quiet by deadline falls back (ReasonBusy or ReasonTimeout), as
// does every one not yet sent once ch fails (ReasonChannel, Err set) or ctx is
// done (ReasonInterrupted). It returns once every connection is moved (its teardown done),
// lost (likewise), or serving again.
func Drive(ctx context.Context, conns []Conn, ch BatchSender, deadline time.Time) Result {
	start := time.Now()
	d := &driver{
		conns: conns,
		run:   &Run{deadline: deadline, events: make(chan event, len(conns))},
		res:   Result{Fallback: map[string]int{}},
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for d.pending > 0 || d.next < len(d.conns) {
		if !d.released {
			d.ask() // keep a wave asked, whatever settled since
		}
		if d.pending == 0 {
			continue // that wave could not move at all: ask the next
		}
		if d.released {
			d.take(<-d.run.events)
		} else {
			select {
			case ev := <-d.run.events:
				d.take(ev)
			case <-timer.C:
				d.release(ReasonTimeout)
			case <-ctx.Done():
				d.release(ReasonInterrupted)
			}
		}
		// Whatever else is quiet already goes in the same batch.
	more:
		for d.pending > 0 && len(d.batch) < batchSize {
			select {
			case ev := <-d.run.events:
				d.take(ev)
			default:
				break more
			}
		}
		if len(d.batch) > 0 {
			d.send(ch)
		}
	}
	for _, c := range d.finished {
		<-c.HandoffDone()
	}
	d.res.Duration = time.Since(start)
	return d.res
}

// driver is Drive's state. Connections are asked in waves, a few batches' worth at
// a time, not all at once: a connection stops reading from when it is asked until
// its batch is acknowledged, so under load each one pauses for about one batch
// instead of for the whole handoff.
type driver struct {
	conns    []Conn
	next     int    // conns[next:] are not asked yet
	asked    []Conn // every connection asked, settled or not
	pending  int    // asked and not yet reported
	run      *Run
	batch    []Conn // quiet, to be sent
	finished []Conn // moved or lost: Drive waits for their teardown
	broken   bool   // ch failed: nothing more is sent
	released bool   // nothing more is asked; the asked and not quiet are released
	res      Result
}

func (d *driver) ask() {
	for d.pending < wave && d.next < len(d.conns) {
		c := d.conns[d.next]
		d.conns[d.next] = nil
		d.next++
		if reason := c.HandoffRequest(d.run); reason != "" {
			d.res.Fallback[reason]++
			continue
		}
		d.asked = append(d.asked, c)
		d.pending++
	}
}

// release ends the wait for every connection not yet quiet: each one the CAS takes
// is counted here; the others report themselves. Those never asked stay as they
// are, counted for the same reason.
func (d *driver) release(reason string) {
	for _, c := range d.asked {
		if c.HandoffPoint().state.CompareAndSwap(stateRequested, stateReleased) {
			d.res.Fallback[reason]++
			d.pending--
		}
	}
	d.res.Fallback[reason] += len(d.conns) - d.next
	d.next = len(d.conns)
	d.released = true
}

func (d *driver) take(ev event) {
	d.pending--
	switch {
	case !ev.quiet:
		d.res.Fallback[ev.reason]++
	case d.broken:
		ev.c.HandoffPoint().verdict <- Fallback
		d.res.Fallback[ReasonChannel]++
	default:
		d.batch = append(d.batch, ev.c)
	}
}

// send sends the batch and delivers its verdicts. A batch that fails is lost: the
// receiver may have adopted some of it. One that could not be sent at all (a
// descriptor not to be had) falls back. Either way the channel counts as broken.
func (d *driver) send(ch BatchSender) {
	sent, err := sendBatch(ch, d.batch)
	switch {
	case err == nil:
		d.res.Batches++
		d.res.Moved += len(d.batch)
		d.settle(Moved)
	case sent:
		d.res.Lost += len(d.batch)
		d.settle(Lost)
	default:
		d.res.Fallback[ReasonChannel] += len(d.batch)
		for _, c := range d.batch {
			c.HandoffPoint().verdict <- Fallback
		}
	}
	d.batch = d.batch[:0:0]
	if err != nil {
		d.res.Err = err
		d.broken = true
		if !d.released {
			d.release(ReasonChannel)
		}
	}
}

// settle delivers v to the batch, whose connections then leave this process.
func (d *driver) settle(v Verdict) {
	for _, c := range d.batch {
		c.HandoffPoint().verdict <- v
	}
	d.finished = append(d.finished, d.batch...)
}

// sendBatch sends batch through ch; sent says whether anything may have reached the
// receiver.
func sendBatch(ch BatchSender, batch []Conn) (sent bool, err error) {
	fds := make([]int, 0, len(batch))
	states := make([][]byte, 0, len(batch))
	for _, c := range batch {
		fd, err := c.HandoffFD()
		if err != nil {
			return false, fmt.Errorf("handoff: batch not sent: %w", err)
		}
		fds = append(fds, fd)
		states = append(states, c.HandoffPoint().msg)
	}
	return true, ch.Send(fds, states)
}
