package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/metrics"
)

// handoffSide is this process's part in moving established connections across an
// upgrade (internal/handoff): as the old process it sends them to its successor,
// as the new one it receives them from its parent.
type handoffSide struct {
	met *metrics.Handoff
	// passing is held from the channel's creation until Upgrade returned: a second
	// SIGHUP meanwhile (refused by tableflip) must not replace the file the first
	// one's child is being given.
	passing sync.Mutex
	out     *handoff.Channel // to the successor, once an upgrade succeeded
	// received is closed once the parent's handoff is over (at once with no parent).
	received chan struct{}
}

// claimHandoff, in start before Ready, claims the channel a parent passed and
// starts receiving its connections; s.conns must exist. With no parent (or a
// parent that passed none) there is nothing to receive.
func (s *server) claimHandoff() (undo func(), err error) {
	s.handoff.met = s.met.Handoff()
	s.handoff.received = make(chan struct{})
	f, err := s.upg.InheritedFile(handoff.Name)
	if err != nil || f == nil {
		close(s.handoff.received)
		return func() {}, err
	}
	ch, err := handoff.FromFile(f)
	f.Close()
	if err != nil {
		close(s.handoff.received)
		return func() {}, err
	}
	go s.receiveConnections(ch)
	return func() { ch.Close(); <-s.handoff.received }, nil
}

// receiveConnections adopts what the parent sends until it says it is done, or
// its end closes (it exited, or died: what it had not sent stays with it).
func (s *server) receiveConnections(ch *handoff.Channel) {
	defer close(s.handoff.received)
	defer ch.Close()
	start := time.Now()
	adopted, rejected := 0, 0
	// Reports wait for the dedup windows (the table's gate): connections moved
	// before it opens would wait too, so the parent keeps serving them until then.
	<-s.dedup.Ready()
	// The ready names this process's legacy listeners: the parent sends a legacy
	// connection only to a listener of the same name and format. With none, the
	// plain ready says the same and a parent of the build before legacy handoff
	// understands it (it reads the named ready as no ready, and drains everything).
	signal := ch.SignalReady
	if len(s.legacy) > 0 {
		ready := &handoff.Ready{Legacy: map[string]string{}}
		for _, ll := range s.legacy {
			ready.Legacy[ll.cfg.Name] = ll.cfg.Format
		}
		signal = func() error { return ch.SignalReadyWith(ready) }
	}
	if err := signal(); err != nil {
		s.log.Debug("handoff: the previous process is not listening", zap.Error(err))
		return
	}
	legacyAdopted := 0
	err := ch.Receive(func(f *os.File, st *handoff.State, err error) {
		if err == nil && st.Kind == handoff.KindLegacy {
			// No ERROR to send: these formats have none. A connection the parent
			// should not have sent (it checks the ready's listeners) is closed.
			if err = s.adoptLegacy(f, st); err == nil {
				adopted++
				legacyAdopted++
				return
			}
			s.handoff.met.Add("rejected", "adopt", 1)
			s.log.Warn("handoff: legacy connection not adopted", zap.Error(err))
			rejected++
			return
		}
		if err == nil {
			err = s.conns.Adopt(f, st)
			if err == nil {
				adopted++
				return
			}
			s.handoff.met.Add("rejected", "adopt", 1)
			s.log.Warn("handoff: connection not adopted", zap.Error(err))
			rejected++
			return
		}
		s.handoff.met.Add("rejected", "bad_state", 1)
		s.conns.Reject(f, err)
		rejected++
	})
	s.handoff.met.Add("adopted", "", adopted)
	if sum := ch.Summary(); err == nil && sum != nil {
		s.handoff.met.Count(sum) // the previous process's count: its own metrics went with it
	}
	if adopted+rejected == 0 && err == nil {
		return // the parent moved nothing (handoff off, or no connection)
	}
	log := s.log.Info
	if err != nil {
		log = s.log.Warn
	}
	log("handoff received: connections adopted from the previous process", zap.Int("adopted", adopted), zap.Int("legacy_adopted", legacyAdopted),
		zap.Int("rejected", rejected), zap.Duration("took", time.Since(start)), zap.Error(err))
}

// passHandoff makes the channel for the upgrade about to start and passes the
// child's end; it returns nil (and the upgrade goes on without one) when another
// upgrade is passing one, which tableflip then refuses, or on error.
func (s *server) passHandoff() *handoff.Pair {
	if !s.handoff.passing.TryLock() {
		return nil
	}
	p, err := handoff.NewPair()
	if err == nil {
		err = s.upg.PassFile(handoff.Name, p.Child)
		p.Child.Close() // tableflip holds its own duplicate
	}
	if err != nil {
		s.log.Warn("handoff: no channel for this upgrade: its connections will be drained with GOAWAY", zap.Error(err))
		if p != nil {
			p.Parent.Close()
		}
		s.handoff.passing.Unlock()
		return nil
	}
	return p
}

// afterUpgrade keeps the channel of an upgrade that succeeded, or closes it.
func (s *server) afterUpgrade(p *handoff.Pair, err error) {
	if p == nil {
		return
	}
	defer s.handoff.passing.Unlock()
	if err != nil {
		p.Parent.Close()
		return
	}
	s.handoff.out = p.Parent
}

// handOffConnections runs at the start of the drain, before the GOAWAY drain. In a
// process started by an upgrade it first waits for the parent's handoff to end, so
// the drain finds every connection adopted. After an upgrade it moves this
// process's connections to the successor (upgrade.handoff, read now); the drain
// that follows finds only those that fell back.
func (s *server) handOffConnections(ctx context.Context, reason string) {
	<-s.handoff.received
	ch := s.handoff.out
	if reason != reasonUpgrade || ch == nil {
		return
	}
	defer ch.Close() // the successor reads end-of-file: its receiving is over
	on, timeout := s.handoffSettings()
	if !on {
		s.log.Info("handoff off (upgrade.handoff: false): draining every connection with GOAWAY")
		return
	}
	ready, err := ch.WaitReadyInfo(timeout)
	if err != nil {
		n := s.conns.Count() + s.legacyCount()
		s.handoff.met.Add("fallback", "not_ready", n)
		s.log.Warn("handoff: every connection is drained (native: GOAWAY; legacy: served until drain.timeout)", zap.Int("connections", n), zap.Error(err))
		return
	}
	start := time.Now()
	res := s.conns.HandOff(ctx, ch, timeout)
	legacyMoved := s.handOffLegacy(ctx, ch, ready, timeout, &res)
	res.Duration = time.Since(start) // native and legacy
	// This process's metrics go with it: the successor counts the handoff from
	// this summary.
	sum := &handoff.Summary{Moved: res.Moved, Lost: res.Lost, Fallback: res.Fallback, Duration: res.Duration}
	if err := ch.Done(sum); err != nil && res.Err == nil {
		res.Err = err
	}
	s.handoff.met.Count(sum)
	fields := []zap.Field{zap.Int("moved", res.Moved), zap.Int("legacy_moved", legacyMoved), zap.Int("fallback", res.FallenBack()), zap.Int("lost", res.Lost),
		zap.Int("batches", res.Batches), zap.Duration("duration", res.Duration)}
	for r, n := range res.Fallback {
		fields = append(fields, zap.Int("fallback_"+r, n))
	}
	if res.Err != nil {
		s.log.Warn("handoff: the channel to the new process broke; what was not sent is drained here", append(fields, zap.Error(res.Err))...)
		return
	}
	s.log.Info("handoff finished: connections moved to the new process", fields...)
}

// handOffLegacy moves the legacy connections after the native ones, over the same
// channel, listener by listener; their results are added to res. A listener the
// new process does not have, or has with another format, keeps its connections
// (fallback no_listener, format): the legacy drain serves them until
// drain.timeout, as before handoff existed. It returns how many moved.
func (s *server) handOffLegacy(ctx context.Context, ch *handoff.Channel, ready *handoff.Ready, timeout time.Duration, res *handoff.Result) int {
	moved := 0
	// The legacy connections get upgrade.handoff_timeout of their own: the native
	// ones may have used theirs.
	deadline := time.Now().Add(timeout)
	for _, ll := range s.legacy {
		format, ok := ready.Legacy[ll.cfg.Name]
		switch {
		case res.Err != nil:
			res.Fallback["channel"] += ll.l.Count()
		case !ok:
			res.Fallback["no_listener"] += ll.l.Count()
		case format != ll.cfg.Format:
			res.Fallback["format"] += ll.l.Count()
		default:
			r := ll.l.HandOff(ctx, ch, deadline)
			res.Moved += r.Moved
			res.Lost += r.Lost
			res.Batches += r.Batches
			res.Err = r.Err
			moved += r.Moved
			for k, v := range r.Fallback {
				res.Fallback[k] += v
			}
		}
	}
	// Reasons with no connection are not reported.
	for k, v := range res.Fallback {
		if v == 0 {
			delete(res.Fallback, k)
		}
	}
	return moved
}

// adoptLegacy hands a legacy connection to this process's listener of its name.
func (s *server) adoptLegacy(f *os.File, st *handoff.State) error {
	for _, ll := range s.legacy {
		if ll.cfg.Name == st.Listener {
			return ll.l.Adopt(f, st)
		}
	}
	f.Close()
	return fmt.Errorf("handoff: conn %d (%s): no legacy listener %q here", st.ConnID, st.ClientID, st.Listener)
}

// legacyCount is the number of open legacy connections.
func (s *server) legacyCount() int {
	n := 0
	for _, ll := range s.legacy {
		n += ll.l.Count()
	}
	return n
}

// handoffSettings are upgrade.handoff and upgrade.handoff_timeout as in force now:
// read at each upgrade, so a reload applies them to the next one.
func (s *server) handoffSettings() (on bool, timeout time.Duration) {
	cfg := s.cfg.Load()
	return cfg.Upgrade.Handoff, cfg.Upgrade.HandoffTimeout
}
