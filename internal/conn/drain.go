package conn

import (
	"cmp"
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// DrainResult is what a drain did.
type DrainResult struct {
	Goaways  int           // GOAWAYs sent
	Closed   int           // connections that ended by themselves before the deadline
	Cut      int           // connections closed with ERROR drain_timeout at the deadline
	Duration time.Duration // from the start of the drain until no connection was left
}

// sendGoaway tells c to move to a new connection. The reader keeps reading,
// persisting and acking whatever c still sends.
func (m *Manager) sendGoaway(c *Conn) {
	if !c.goawayAt.CompareAndSwap(0, monoNow()) {
		return
	}
	left := time.Until(m.drainDeadline.Load().(time.Time))
	if c.send(protocol.TypeGoaway, 0, &protocol.Goaway{Reason: m.drainReason.Load().(string), DeadlineMS: max(left.Milliseconds(), 0)}) {
		m.obs.GoawaySent()
	}
}

// Drain tells every connection GOAWAY, spread evenly over the drain spread so that
// 50,000 agents do not reconnect in the same millisecond (nats-server's lame-duck
// mode spaces its closes the same way), then waits for them to leave. Connections
// still open at the drain timeout are closed with ERROR drain_timeout. The caller
// closes the listener first; a connection that finishes its handshake during the
// drain is told GOAWAY right after WELCOME. Drain returns early if ctx ends, cutting
// what is left.
func (m *Manager) Drain(ctx context.Context, reason string) DrainResult {
	s := m.Settings()
	start := time.Now()
	deadline := start.Add(s.DrainTimeout)
	m.drainDeadline.Store(deadline)
	m.drainReason.Store(reason)
	m.draining.Store(true)

	conns := m.reg.snapshot(nil)
	slices.SortFunc(conns, func(a, b *Conn) int { return cmp.Compare(a.id, b.id) })
	before := len(conns)
	m.log.Info("drain started", zap.String("reason", reason), zap.Int("connections", before),
		zap.Duration("spread", s.DrainSpread), zap.Duration("timeout", s.DrainTimeout))

	var res DrainResult
	spread := min(s.DrainSpread, s.DrainTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < len(conns) {
		due := len(conns)
		if el := time.Since(start); spread > 0 && el < spread {
			due = int(int64(len(conns)) * int64(el) / int64(spread))
		}
		for ; sent < due; sent++ {
			if conns[sent].state.Load() == stateActive {
				m.sendGoaway(conns[sent])
				res.Goaways++
			}
			conns[sent] = nil
		}
		if sent == len(conns) {
			break
		}
		select {
		case <-ctx.Done():
			deadline = time.Now()
			sent = len(conns)
		case <-tick.C:
		}
	}
	m.log.Info("drain: GOAWAY sent", zap.Int("goaways", res.Goaways), zap.Duration("elapsed", time.Since(start)))

	// Wait for clients to finish their in-flight reports and leave.
	for m.reg.len() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			deadline = time.Now()
		case <-tick.C:
		}
	}
	left := m.reg.snapshot(nil)
	res.Cut = len(left)
	res.Closed = max(before-res.Cut, 0)
	if res.Cut > 0 {
		m.log.Warn("drain deadline passed: closing remaining connections", zap.Int("connections", res.Cut))
		for _, c := range left {
			c.fail(ReasonDrain, protocol.CodeDrainTimeout, "drain deadline passed")
		}
		// The ERROR goes out through the flusher; once it is written the socket is
		// closed (no lingering for the peer to hang up: the deadline has passed). A
		// peer that does not read is cut at the write timeout.
		grace := time.Now().Add(s.WriteTimeout)
		for _, c := range left {
			for !c.flushed() && time.Now().Before(grace) {
				select {
				case <-c.done:
				case <-tick.C:
				}
			}
			c.closeNow(ReasonDrain)
		}
		for _, c := range left {
			<-c.done
		}
	}
	res.Duration = time.Since(start)
	m.log.Info("drain finished", zap.Int("goaways", res.Goaways), zap.Int("closed_by_client", res.Closed),
		zap.Int("cut_at_deadline", res.Cut), zap.Duration("duration", res.Duration))
	return res
}

func sortInfos(in []Info) {
	slices.SortFunc(in, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
}
