package handoff

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// batchSize is the most connections a batch carries; window is how many batches
// may be sent and not yet acknowledged; maxAsked bounds the connections a handoff
// holds stopped at once (asked and not yet quiet, quiet and not yet sent, sent and
// not yet acknowledged). A connection stops reading from when it is asked until
// its batch is acknowledged, so what is asked ahead of it, not the message's
// limit (MaxFDs), sets how long each client's reports wait during an upgrade.
// Measured at 150k reports/s over 1,000 connections, 3 upgrades per 10 s
// (docs/PERFORMANCE.md): batches of 32 took the ack p99 during upgrades from a
// median 1.78x steady (batches of 253) to 1.27x; one batch in flight instead of
// three took a connection's pause, asked to acknowledged, from a median p99 of
// 22.5 ms per upgrade to 6.6 ms, and the handoff from a median 79 ms to 36 ms:
// three in flight queued each batch behind two others in the receiver, which
// adopts one at a time, and under load went out as batches of one whenever the
// window had room.
//
// Asking the next batch's worth while one is in flight keeps the channel busy,
// but a connection asked then waits for the batch before it and its own. For an
// idle connection that wait is unseen, and it keeps an idle handoff fast; an
// active one (a read within activeWithin; an adoption counts as one) is asked
// only while fewer than batchSize are stopped, so its reports wait for one
// batch, its own: under the load above the pause's p50 per upgrade went from 3.5
// to 1.6 ms and its p99 from 8.6 to 6.2 ms (medians of 12 upgrades), the handoff
// from 61 to 66 ms.
const (
	batchSize    = 32
	window       = 1
	maxAsked     = (window + 1) * batchSize
	activeWithin = 100 * time.Millisecond
)

// BatchSender sends batches of descriptors with their state messages (*Channel).
// Post and Ack may run at the same time, on different goroutines.
type BatchSender interface {
	// Post sends one batch without waiting for its acknowledgement.
	Post(fds []int, states [][]byte) error
	// Ack waits for the acknowledgement of the oldest batch posted and not yet
	// acknowledged: nil means the receiver owns every descriptor of that batch.
	Ack() error
}

// stateVersioner is a BatchSender that knows which State version its receiver
// reads (*Channel, from the ready); with another, Drive writes StateVersion.
type stateVersioner interface {
	StateVersion() byte
}

// Result is what a handoff did.
type Result struct {
	Moved    int            // acknowledged by the new process
	Lost     int            // sent, not acknowledged: closed (contract step 3)
	Fallback map[string]int // by reason: left to the drain
	Batches  int
	Duration time.Duration
	Err      error // what broke the channel, if it broke
	// Pauses is, per connection moved, how long it stopped reading: from when it
	// was asked to when its batch was acknowledged (its reports waited that long).
	Pauses []time.Duration
}

// PauseQuantiles are the qs quantiles (0..1) of Pauses, 0s with none.
func (r Result) PauseQuantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if len(r.Pauses) == 0 {
		return out
	}
	p := slices.Sorted(slices.Values(r.Pauses))
	for i, q := range qs {
		out[i] = p[min(len(p)-1, int(q*float64(len(p))))]
	}
	return out
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
	version  byte       // of the State messages: what the receiver reads
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
	version := byte(StateVersion)
	if v, ok := ch.(stateVersioner); ok {
		version = v.StateVersion()
	}
	d := &driver{
		conns: conns,
		run:   &Run{deadline: deadline, events: make(chan event, len(conns)), version: version},
		res:   Result{Fallback: map[string]int{}},
		acks:  startAcks(ch),
	}
	defer close(d.acks.want)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for d.pending > 0 || d.next < len(d.conns) || len(d.batch) > 0 || len(d.flight) > 0 {
		if !d.released {
			d.ask() // keep the most asked, whatever settled since
		}
		d.gather()
		if d.ready() {
			d.post(ch)
			continue
		}
		if d.pending == 0 && len(d.flight) == 0 {
			continue // nothing to wait for: ask the next (or they could not move at all)
		}
		var events <-chan event
		if d.pending > 0 && len(d.batch) < batchSize {
			events = d.run.events
		}
		var acked <-chan error
		if len(d.flight) > 0 {
			acked = d.acks.got
		}
		var expired <-chan time.Time
		var done <-chan struct{}
		if !d.released {
			expired, done = timer.C, ctx.Done()
		}
		select {
		case ev := <-events:
			d.take(ev)
		case err := <-acked:
			d.acked(err)
		case <-expired:
			d.release(ReasonTimeout)
		case <-done:
			d.release(ReasonInterrupted)
		}
	}
	for _, c := range d.finished {
		<-c.HandoffDone()
	}
	d.res.Duration = time.Since(start)
	return d.res
}

// driver is Drive's state. Connections are asked two batches' worth at a time,
// not all at once: a connection stops reading from when it is asked until its
// batch is acknowledged, so under load each one pauses for about that long
// instead of for the whole handoff.
//
// Every connection asked gets exactly one verdict: from the driver once its batch
// is acknowledged (Moved), once its batch's fate is unknown (Lost: posted, and
// the post or an acknowledgement failed, this one's or an earlier one's), or once
// it is known never to have reached the receiver (Fallback: never posted);
// otherwise it falls back on its own (not quiet in time, or released).
type driver struct {
	conns    []Conn
	next     int    // conns[next:] are not asked yet
	asked    []Conn // every connection asked, settled or not
	pending  int    // asked and not yet reported
	run      *Run
	batch    []Conn   // quiet, to be posted
	flight   [][]Conn // posted, not yet acknowledged, oldest first
	inFlight int      // connections in flight
	acks     acks
	finished []Conn // moved or lost: Drive waits for their teardown
	broken   bool   // ch failed: nothing more is posted
	released bool   // nothing more is asked; the asked and not quiet are released
	res      Result
}

// ask asks connections in order up to maxAsked stopped at once, an active one only
// below batchSize (see activeWithin).
func (d *driver) ask() {
	now := mono.Now()
	for d.next < len(d.conns) {
		stopped := d.pending + len(d.batch) + d.inFlight
		c := d.conns[d.next]
		if stopped >= maxAsked || (stopped >= batchSize && now-c.HandoffLastRead() < int64(activeWithin)) {
			return
		}
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

// gather takes whatever is quiet already, up to a batch.
func (d *driver) gather() {
	for d.pending > 0 && len(d.batch) < batchSize {
		select {
		case ev := <-d.run.events:
			d.take(ev)
		default:
			return
		}
	}
}

// ready says the batch goes now: whenever the window has room, full or not, so
// that a connection quiet under load does not wait for others to fill its batch;
// while the window is full the batch grows (up to batchSize), so batches are as
// large as the receiver is slow.
func (d *driver) ready() bool {
	return len(d.batch) > 0 && !d.broken && len(d.flight) < window
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

// post sends the batch. One that could not be sent at all (a descriptor not to be
// had) falls back: nothing of it reached the receiver. One whose post failed is
// lost: part of it may have. Either way the channel counts as broken.
func (d *driver) post(ch BatchSender) {
	b := d.batch
	d.batch = nil
	fds, states, err := collect(b)
	if err != nil {
		d.res.Fallback[ReasonChannel] += len(b)
		verdict(b, Fallback)
		d.fail(err)
		return
	}
	if err := ch.Post(fds, states); err != nil {
		d.settle(b, Lost)
		d.fail(err)
		return
	}
	d.flight = append(d.flight, b)
	d.inFlight += len(b)
	d.acks.want <- struct{}{}
}

// acked settles the oldest batch in flight with its acknowledgement's outcome.
func (d *driver) acked(err error) {
	b := d.flight[0]
	d.flight[0] = nil
	d.flight = d.flight[1:]
	d.inFlight -= len(b)
	if err != nil {
		d.settle(b, Lost)
		d.fail(err)
		return
	}
	d.res.Batches++
	d.settle(b, Moved)
}

// fail marks the channel broken: the connections quiet and not posted fall back,
// the asked and not quiet are released, and none is asked any more. The batches
// in flight are settled by their acknowledgements (one the receiver sent before
// the break still counts).
func (d *driver) fail(err error) {
	if d.res.Err == nil {
		d.res.Err = err
	}
	d.broken = true
	d.res.Fallback[ReasonChannel] += len(d.batch)
	verdict(d.batch, Fallback)
	d.batch = nil
	if !d.released {
		d.release(ReasonChannel)
	}
}

// settle counts b as v (Moved or Lost) and delivers the verdict: b's connections
// then leave this process.
func (d *driver) settle(b []Conn, v Verdict) {
	if v == Moved {
		d.res.Moved += len(b)
		for _, c := range b {
			d.res.Pauses = append(d.res.Pauses, time.Since(c.HandoffPoint().asked))
		}
	} else {
		d.res.Lost += len(b)
	}
	verdict(b, v)
	d.finished = append(d.finished, b...)
}

func verdict(b []Conn, v Verdict) {
	for _, c := range b {
		c.HandoffPoint().verdict <- v
	}
}

// collect gathers b's descriptors and state messages.
func collect(b []Conn) (fds []int, states [][]byte, err error) {
	fds = make([]int, 0, len(b))
	states = make([][]byte, 0, len(b))
	for _, c := range b {
		fd, err := c.HandoffFD()
		if err != nil {
			return nil, nil, fmt.Errorf("handoff: batch not sent: %w", err)
		}
		fds = append(fds, fd)
		states = append(states, c.HandoffPoint().msg)
	}
	return fds, states, nil
}

// acks reads acknowledgements on a goroutine of its own, one per want, in order,
// so that the driver keeps gathering and posting while the receiver adopts. After
// the first failure it reads no more: every later batch gets that error (its fate
// is as unknown). Closing want ends the goroutine; the driver closes it only with
// nothing in flight.
type acks struct {
	want chan struct{}
	got  chan error
}

func startAcks(ch BatchSender) acks {
	a := acks{want: make(chan struct{}, window), got: make(chan error, window)}
	go func() {
		var err error
		for range a.want {
			if err == nil {
				err = ch.Ack()
			}
			a.got <- err
		}
	}()
	return a
}
