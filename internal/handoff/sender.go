package handoff

import (
	"context"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Sender is the sending side of this process's handoffs: it passes a channel to
// each upgrade's new process and, once one has taken over, moves every group's
// connections through it; what it cannot move falls back to the drain.
type Sender struct {
	groups  []Group // in kindOrder
	counter Counter
	log     *zap.Logger
	out     *Channel // to the successor, once an upgrade succeeded
}

// NewSender returns the sending side for groups.
func NewSender(groups []Group, counter Counter, log *zap.Logger) *Sender {
	groups = slices.Clone(groups)
	slices.SortStableFunc(groups, func(a, b Group) int {
		return kindRank(a.HandoffTarget().Kind) - kindRank(b.HandoffTarget().Kind)
	})
	return &Sender{groups: groups, counter: counter, log: log}
}

// Pass makes the channel for the upgrade about to start and passes the child's end
// through pass (upgrade.PassFile, under Name). It returns nil on error, and the
// upgrade goes on without a channel. Passed must follow with the upgrade's
// outcome; the caller runs one upgrade at a time from Pass to Passed, so the file
// passed is the one the child that upgrade starts is given.
func (s *Sender) Pass(pass func(name string, f *os.File) error) *Pair {
	p, err := NewPair()
	if err == nil {
		err = pass(Name, p.Child)
		p.Child.Close() // the upgrader holds its own duplicate
	}
	if err != nil {
		s.log.Warn("handoff: no channel for this upgrade: its connections will be drained with GOAWAY", zap.Error(err))
		if p != nil {
			p.Parent.Close()
		}
		return nil
	}
	return p
}

// Passed keeps the channel of an upgrade that succeeded (err nil), or closes it.
func (s *Sender) Passed(p *Pair, err error) {
	if p == nil {
		return
	}
	if err != nil {
		p.Parent.Close()
		return
	}
	s.out = p.Parent
}

// Send moves the connections to the successor, if an upgrade succeeded; with on
// false (upgrade.handoff) it only closes the channel. The successor's ready, then
// each kind's connections, get timeout each (upgrade.handoff_timeout): the legacy
// ones do not pay for the time the native ones took. Call it after the listeners
// are closed and before the drain, which then finds only what fell back.
func (s *Sender) Send(ctx context.Context, on bool, timeout time.Duration) {
	ch := s.out
	if ch == nil {
		return
	}
	defer ch.Close() // the successor reads end-of-file: its receiving is over
	if !on {
		s.log.Info("handoff off (upgrade.handoff: false): draining every connection with GOAWAY")
		return
	}
	ready, err := ch.WaitReady(time.Now().Add(timeout))
	if err != nil {
		n := 0
		for _, g := range s.groups {
			n += len(g.HandoffConns())
		}
		s.counter.Add("fallback", ReasonNotReady, n)
		s.log.Warn("handoff: every connection is drained (native: GOAWAY; legacy: served until drain.timeout)", zap.Int("connections", n), zap.Error(err))
		return
	}
	start := time.Now()
	res, moved := s.send(ctx, ch, ready, timeout)
	res.Duration = time.Since(start)
	// This process's metrics go with it: the successor counts the handoff from
	// this summary.
	sum := &Summary{Moved: res.Moved, Lost: res.Lost, Fallback: res.Fallback, Duration: res.Duration, HeapGoal: heapGoal()}
	if err := ch.Done(sum); err != nil && res.Err == nil {
		res.Err = err
	}
	s.counter.Count(sum)
	s.logResult(res, moved)
}

// send moves each group in turn, kind by kind; moved counts by kind.
func (s *Sender) send(ctx context.Context, ch BatchSender, ready *Ready, timeout time.Duration) (Result, map[string]int) {
	res := Result{Fallback: map[string]int{}}
	moved := map[string]int{}
	var deadline time.Time
	kind := ""
	for _, g := range s.groups {
		t := g.HandoffTarget()
		if t.Kind != kind || deadline.IsZero() {
			kind, deadline = t.Kind, time.Now().Add(timeout)
		}
		conns := g.HandoffConns()
		if res.Err != nil {
			res.Fallback[ReasonChannel] += len(conns)
			continue
		}
		if reason := ready.refuses(t); reason != "" {
			res.Fallback[reason] += len(conns)
			continue
		}
		r := Drive(ctx, conns, ch, deadline)
		res.Moved += r.Moved
		res.Lost += r.Lost
		res.Batches += r.Batches
		res.Err = r.Err
		res.Pauses = append(res.Pauses, r.Pauses...)
		moved[t.Kind] += r.Moved
		for k, v := range r.Fallback {
			res.Fallback[k] += v
		}
	}
	// Reasons with no connection are not reported.
	for k, v := range res.Fallback {
		if v == 0 {
			delete(res.Fallback, k)
		}
	}
	return res, moved
}

func (s *Sender) logResult(res Result, moved map[string]int) {
	fields := []zap.Field{zap.Int("moved", res.Moved)}
	for _, kind := range kindOrder[1:] {
		fields = append(fields, zap.Int(kind+"_moved", moved[kind]))
	}
	fields = append(fields, zap.Int("fallback", res.FallenBack()), zap.Int("lost", res.Lost),
		zap.Int("batches", res.Batches), zap.Duration("duration", res.Duration))
	// How long the connections moved stopped reading, asked to acknowledged.
	pause := res.PauseQuantiles(0.5, 0.99, 1)
	fields = append(fields, zap.Duration("pause_p50", pause[0]), zap.Duration("pause_p99", pause[1]), zap.Duration("pause_max", pause[2]))
	for r, n := range res.Fallback {
		fields = append(fields, zap.Int("fallback_"+r, n))
	}
	if res.Err != nil {
		s.log.Warn("handoff: the channel to the new process broke; what was not sent is drained here", append(fields, zap.Error(res.Err))...)
		return
	}
	s.log.Info("handoff finished: connections moved to the new process", fields...)
}
