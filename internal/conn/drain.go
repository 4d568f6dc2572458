package conn

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// DrainResult is what a drain did.
type DrainResult struct {
	Goaways  int           // GOAWAYs sent
	Closed   int           // connections that ended by themselves before the deadline
	Cut      int           // connections closed with ERROR drain_timeout at the deadline
	Duration time.Duration // from the start of the drain until no connection was left
	Spread   time.Duration // the window GOAWAYs were spread over (drain.spread, or longer: drainSpread)
}

// sendGoaway tells c, which completed its handshake during the drain, to move to a
// new connection, with a reconnect hint within one slot of the spread.
func (m *Manager) sendGoaway(c *Conn) {
	m.sendGoawayAt(c, mono.Now(), time.Duration(m.dst.slot.Load()))
}

// sendGoawayAt tells c to move to a new connection, hinting it to reconnect within
// [due, due+slot) (mono; see goawayHint). The reader keeps reading, persisting and
// acking whatever c still sends.
func (m *Manager) sendGoawayAt(c *Conn, due int64, slot time.Duration) {
	now := mono.Now()
	if !c.goawayAt.CompareAndSwap(0, now) {
		return
	}
	left := time.Until(m.drainDeadline.Load().(time.Time))
	g := &protocol.Goaway{
		Reason:           m.drainReason.Load().(string),
		DeadlineMS:       max(left.Milliseconds(), 0),
		ReconnectAfterMS: goawayHint(now, due, slot, left).Milliseconds(),
	}
	if c.send(protocol.TypeGoaway, 0, g) {
		m.obs.GoawaySent()
	}
}

// Drain tells every connection GOAWAY, spread evenly over the drain spread so that
// 50,000 agents do not reconnect in the same millisecond (nats-server's lame-duck
// mode spaces its closes the same way), then waits for them to leave. The spread is
// drain.spread, or longer when the connections could not all reconnect within
// limits.handshake_rate in it (drainSpread); each GOAWAY's reconnect_after_ms places
// its client's reconnect in its own slot of the spread (goawayHint). Connections
// still open at the drain timeout are closed with ERROR drain_timeout. The caller
// closes the listener first; a connection that finishes its handshake during the
// drain is told GOAWAY right after WELCOME. Drain returns early if ctx ends, cutting
// what is left.
func (m *Manager) Drain(ctx context.Context, reason string) DrainResult {
	s := m.Settings()
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(s.DrainTimeout))
	defer cancel()
	m.drainDeadline.Store(start.Add(s.DrainTimeout))
	m.drainReason.Store(reason)
	m.draining.Store(true)

	conns := m.reg.Snapshot(nil)
	slices.SortFunc(conns, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
	before := len(conns)
	var res DrainResult
	spread, raised, capped := drainSpread(before, s)
	res.Spread = spread
	if raised || capped {
		m.logSpread(s, before, spread, capped)
	}
	m.log.Info("drain started", zap.String("reason", reason), zap.Int("connections", before),
		zap.Duration("spread", spread), zap.Duration("timeout", s.DrainTimeout))

	// Late GOAWAYs may push the schedule back, until three quarters of the timeout:
	// the last clients to move keep a quarter of it for their reports.
	res.Goaways = m.spreadGoaways(ctx, conns, spread, max(s.DrainTimeout*3/4, spread))
	m.log.Info("drain: GOAWAY sent", zap.Int("goaways", res.Goaways), zap.Duration("elapsed", time.Since(start)))

	// Wait for clients to finish their in-flight reports and leave.
	select {
	case <-m.reg.Emptied():
	case <-ctx.Done():
	}
	left := m.reg.Snapshot(nil)
	res.Cut = len(left)
	res.Closed = max(before-res.Cut, 0)
	if res.Cut > 0 {
		m.log.Warn("drain deadline passed: closing remaining connections", zap.Int("connections", res.Cut))
		for _, c := range left {
			c.fail(ReasonDrain, protocol.CodeDrainTimeout, "drain deadline passed")
		}
		// The ERROR goes out through the flusher, which closes the socket once it is
		// written (no lingering: the deadline has passed). A peer that does not read
		// gets the write timeout to take it.
		grace := time.NewTimer(s.WriteTimeout)
	wait:
		for _, c := range left {
			select {
			case <-c.Done():
			case <-grace.C:
				break wait
			}
		}
		grace.Stop()
		for _, c := range left {
			c.closeNow(ReasonDrain)
			<-c.Done()
		}
	}
	res.Duration = time.Since(start)
	m.log.Info("drain finished", zap.Int("goaways", res.Goaways), zap.Int("closed_by_client", res.Closed),
		zap.Int("cut_at_deadline", res.Cut), zap.Duration("duration", res.Duration))
	return res
}

// maxLate is how late a GOAWAY may go out before the drain shifts the rest of its
// schedule instead of catching up. A drain goroutine starved for 150 ms (a busy
// process, 50,000 connections) would otherwise send 150 ms worth of GOAWAYs at once,
// and their clients would reach the successor as one burst, over what its bucket
// absorbs (a tenth of a second's worth); 10 ms worth is well within it.
const maxLate = 10 * time.Millisecond

// spreadGoaways sends GOAWAY to each connection of conns still active, the i-th of
// n at start + spread·i/n, sleeping until the next one is due rather than polling,
// its reconnect hint within [its turn, the next turn). When it falls behind by more
// than maxLate it does not catch up: the rest of the schedule moves later, so the
// pace never exceeds n/spread, as long as the last GOAWAY still goes out by latest
// (from start). When ctx ends (the drain deadline, or the caller) it sends the rest
// at once; their hints still point at their turns, within the deadline.
func (m *Manager) spreadGoaways(ctx context.Context, conns []*Conn, spread, latest time.Duration) int {
	start := time.Now()
	startMono := mono.Now()
	var slot time.Duration
	if len(conns) > 0 {
		slot = spread / time.Duration(len(conns))
	}
	m.dst.slot.Store(int64(slot))
	sched := spread         // the schedule; spread becomes 0 when ctx ends
	var shift time.Duration // how much later than planned the schedule runs
	sent := 0
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for i, c := range conns {
		offset := shift + time.Duration(int64(sched)*int64(i)/int64(len(conns)))
		due := start.Add(offset)
		if spread > 0 && time.Until(due) > time.Millisecond {
			if wait == nil {
				wait = time.NewTimer(time.Until(due))
			} else {
				wait.Reset(time.Until(due))
			}
			select {
			case <-wait.C:
			case <-ctx.Done():
				spread = 0
			}
		}
		if late := time.Since(due); spread > 0 && late > maxLate {
			more := min(late, max(latest-sched-shift, 0))
			shift += more
			offset += more
		}
		if c.state.Load() == stateActive {
			m.sendGoawayAt(c, startMono+int64(offset), slot)
			sent++
		}
		conns[i] = nil // do not keep a closed connection reachable for the rest of the drain
	}
	return sent
}

// roundSpread rounds a computed spread for people to read: 8.888888888s is 8.9s.
func roundSpread(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

func sortInfos(in []Info) {
	slices.SortFunc(in, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
}
