package handoff

import (
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Receiver is the receiving side, in a process started by an upgrade: it claims
// the channel its parent passed and adopts what comes through it, each connection
// by the Adopter of its Target.
type Receiver struct {
	adopters []Adopter
	reject   func(f *os.File, problem error)
	gate     <-chan struct{}
	counter  Counter
	log      *zap.Logger
	done     chan struct{} // closed once the parent's handoff is over (at once with none)
	// floorWait bounds the GC hold kept past the handoff; stop ends it early,
	// and held is closed once it is over (at once with none).
	floorWait  time.Duration
	stop, held chan struct{}
}

// ReceiverOptions configures a Receiver.
type ReceiverOptions struct {
	Adopters []Adopter
	// Reject answers a connection whose State cannot be used (the client is told
	// why) and closes it.
	Reject func(f *os.File, problem error)
	// Gate is closed once the process can serve a moved connection's next report
	// without delay (its dedup windows are in); the receiver says it is ready only
	// then, and the parent keeps serving its connections meanwhile.
	Gate    <-chan struct{}
	Counter Counter
	Log     *zap.Logger
	// HeapFloorWait is how long at most the collector stays held after the
	// handoff, until the heap reaches the heap goal the parent sent (gchold.go);
	// 0: the hold ends with the handoff.
	HeapFloorWait time.Duration
}

// NewReceiver returns the receiving side; Claim starts it.
func NewReceiver(o ReceiverOptions) *Receiver {
	return &Receiver{adopters: o.Adopters, reject: o.Reject, gate: o.Gate, counter: o.Counter, log: o.Log, done: make(chan struct{}),
		floorWait: o.HeapFloorWait, stop: make(chan struct{}), held: make(chan struct{})}
}

// Claim, before Ready, claims the channel the parent passed (inherited returns
// the file named Name, nil without one: tableflip closes unclaimed files at Ready)
// and starts receiving on a goroutine of its own. With no parent, or a parent
// that passed none, there is nothing to receive. undo closes the channel and
// waits for the receiving, and a GC hold kept past it, to end.
func (r *Receiver) Claim(inherited func(name string) (*os.File, error)) (undo func(), err error) {
	f, err := inherited(Name)
	if err != nil || f == nil {
		close(r.done)
		close(r.held)
		return func() {}, err
	}
	ch, err := FromFile(f)
	f.Close()
	if err != nil {
		close(r.done)
		close(r.held)
		return func() {}, err
	}
	go r.receive(ch)
	var once sync.Once
	return func() { ch.Close(); once.Do(func() { close(r.stop) }); <-r.done; <-r.held }, nil
}

// Done is closed once the parent's handoff is over: every connection it moved is
// adopted.
func (r *Receiver) Done() <-chan struct{} { return r.done }

// receive adopts what the parent sends until it says it is done, or its end
// closes (it exited, or died: what it had not sent stays with it).
func (r *Receiver) receive(ch *Channel) {
	defer close(r.done)
	defer ch.Close()
	start := time.Now()
	<-r.gate
	hold := holdGC(holdExtra, holdRelease)
	floor := uint64(0) // the heap goal the hold waits for past the handoff
	defer func() {
		if floor == 0 {
			hold.end()
			close(r.held)
			return
		}
		go func() {
			defer close(r.held)
			begun := time.Now()
			why, inUse := hold.until(floor, r.floorWait, r.stop)
			r.log.Info("handoff: collector given back after the previous process's heap goal was waited for", zap.String("why", why),
				zap.Uint64("heap_goal", floor), zap.Uint64("heap_in_use", inUse), zap.Duration("waited", time.Since(begun)))
		}()
	}()
	if err := ch.SignalReadyWith(readyFor(r.adopters)); err != nil {
		r.log.Debug("handoff: the previous process is not listening", zap.Error(err))
		return
	}
	adopted := map[string]int{}
	total, rejected := 0, 0
	err := ch.Receive(func(f *os.File, st *State, err error) {
		hold.adopted()
		if err != nil {
			r.counter.Add("rejected", "bad_state", 1)
			r.reject(f, err)
			rejected++
			return
		}
		if err = r.adopt(f, st); err != nil {
			r.counter.Add("rejected", "adopt", 1)
			what := "handoff: connection not adopted"
			if st.Kind != KindNative {
				what = "handoff: " + st.Kind + " connection not adopted"
			}
			r.log.Warn(what, zap.Error(err))
			rejected++
			return
		}
		adopted[st.Kind]++
		total++
	})
	sum := ch.Summary()
	if err == nil && sum != nil && r.floorWait > 0 && hold.on {
		floor = sum.HeapGoal
	}
	if floor == 0 {
		hold.end()
	}
	r.counter.Add("adopted", "", total)
	if err == nil && sum != nil {
		r.counter.Count(sum) // the previous process's count: its own metrics went with it
	}
	if total+rejected == 0 && err == nil {
		return // the parent moved nothing (handoff off, or no connection)
	}
	log := r.log.Info
	if err != nil {
		log = r.log.Warn
	}
	fields := []zap.Field{zap.Int("adopted", total)}
	for _, kind := range kindOrder[1:] {
		fields = append(fields, zap.Int(kind+"_adopted", adopted[kind]))
	}
	log("handoff received: connections adopted from the previous process", append(fields,
		zap.Int("rejected", rejected), zap.Duration("took", time.Since(start)), zap.Error(err))...)
}

// adopt hands f to the Adopter of st's Target.
func (r *Receiver) adopt(f *os.File, st *State) error {
	for _, a := range r.adopters {
		if t := a.HandoffTarget(); t.Kind == st.Kind && t.Listener == st.Listener {
			return a.Adopt(f, st)
		}
	}
	f.Close()
	return fmt.Errorf("handoff: conn %d (%s): no %s listener %q here", st.ConnID, st.ClientID, st.Kind, st.Listener)
}
