package handoff

import (
	"fmt"
	"os"
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
}

// NewReceiver returns the receiving side; Claim starts it.
func NewReceiver(o ReceiverOptions) *Receiver {
	return &Receiver{adopters: o.Adopters, reject: o.Reject, gate: o.Gate, counter: o.Counter, log: o.Log, done: make(chan struct{})}
}

// Claim, before Ready, claims the channel the parent passed (inherited returns
// the file named Name, nil without one: tableflip closes unclaimed files at Ready)
// and starts receiving on a goroutine of its own. With no parent, or a parent
// that passed none, there is nothing to receive. undo closes the channel and
// waits for the receiving to end.
func (r *Receiver) Claim(inherited func(name string) (*os.File, error)) (undo func(), err error) {
	f, err := inherited(Name)
	if err != nil || f == nil {
		close(r.done)
		return func() {}, err
	}
	ch, err := FromFile(f)
	f.Close()
	if err != nil {
		close(r.done)
		return func() {}, err
	}
	go r.receive(ch)
	return func() { ch.Close(); <-r.done }, nil
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
	defer hold.end()
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
	hold.end()
	r.counter.Add("adopted", "", total)
	if sum := ch.Summary(); err == nil && sum != nil {
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
