package conn

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Admission (limits.handshake_rate) and the reconnect storm it exists for.
//
// 50,000 agents told GOAWAY by a draining process all reconnect to its successor.
// A handshake costs the new process an accept, a goroutine, a JSON HELLO and a
// WELCOME; at the wrong moment (a cold process, a spool still opening) tens of
// thousands at once starve the connections it already serves. So:
//
//   - the accept loop admits connections at limits.handshake_rate, a token bucket;
//     one over the rate is refused before its HELLO with ERROR busy carrying
//     retry_after_ms, a slot of its own in the future (reserveRetry), so a crowd
//     refused together comes back spread at the rate rather than together again;
//   - a drain stretches drain.spread when its connections could not all reconnect
//     within the rate (drainSpread), and gives each GOAWAY a reconnect_after_ms that
//     places its reconnect inside its own slot of the spread (goawayHint).
//
// The bucket is GCRA (the "generic cell rate algorithm", as in ATM and
// throttled/redis-cell): one int64, the theoretical arrival time of the next
// connection, updated with a CAS. No lock, no timer, no goroutine: the accept loop
// pays two atomic operations per connection.

// ReasonBusy labels a connection refused at accept because it came over
// limits.handshake_rate (ERROR busy).
const ReasonBusy CloseReason = "busy"

// burstWindow is how much of a second's rate the bucket admits at once after a lull:
// a tenth. It absorbs the jitter of a fleet arriving at the rate (timers, scheduling,
// a GC pause of the clients) without letting a crowd through: in any window of length
// L at most rate·(L + burstWindow) connections are admitted.
const burstWindow = 100 * time.Millisecond

// maxRetryAfter caps retry_after_ms. Under a sustained overload the reserved slots
// run ever further ahead; past this the refused are spread over its second half
// instead, so no agent is told to wait longer than this to try again.
const maxRetryAfter = 30 * time.Second

// fleetShare is the part of limits.handshake_rate a drain plans its fleet's
// reconnects for: the successor also admits agents that are not part of this drain
// (agents starting, others reconnecting after a network blip), and arrivals are not
// perfectly even.
const fleetShare = 0.9

// AdmissionObserver is implemented by an Observer that also counts admission
// refusals. It is a separate interface so that Observers written before it keep
// compiling; the Manager asks once per refusal, which is rare.
type AdmissionObserver interface {
	// Refused counts a connection refused at accept, before its HELLO, with code
	// (protocol.CodeBusy or protocol.CodeTooManyConns).
	Refused(code protocol.Code)
}

// admission is the Manager's token bucket, its reservations for refused
// connections, and a per-second count of admissions for the peak gauge.
type admission struct {
	tat     atomic.Int64 // mono.Now() at which the bucket is empty: the next admission's theoretical time
	retryAt atomic.Int64 // the latest retry slot handed to a refused connection (mono)

	sec  atomic.Int64 // the current one-second window of mono time
	n    atomic.Int64 // admissions in it
	peak atomic.Int64 // the most admissions in any one window so far

	// Refusals are logged at most once a second, with a count: one line per refused
	// connection would be 10,000 lines a second in a storm.
	lastLog    atomic.Int64
	unreported atomic.Int64

	src sources // per-source shares of the rate (fairness.go)
}

// interval is the time one admission uses at rate per second.
func interval(rate int) int64 { return max(int64(time.Second)/int64(rate), 1) }

// burst is how many connections the bucket admits at once when full.
func burst(rate int) int64 { return max(int64(float64(rate)*burstWindow.Seconds()), 1) }

// admit takes a token at now (mono) under rate, or reports the earliest time (mono)
// a token will be free. rate <= 0 admits everything.
func (a *admission) admit(now int64, rate int) (ok bool, free int64) { return a.take(now, rate, true) }

// take is admit for a connection whose source is within its share of the rate
// (fairness.go) or not: one that is not leaves half of the burst to the others.
func (a *admission) take(now int64, rate int, within bool) (ok bool, free int64) {
	if rate <= 0 {
		a.count(now)
		return true, now
	}
	t := interval(rate)
	tau := (burst(rate) - 1) * t // how far ahead of now the bucket may run
	if !within {
		tau /= 2
	}
	for {
		tat := a.tat.Load()
		next := max(tat, now)
		if next-now > tau {
			return false, next - tau
		}
		if a.tat.CompareAndSwap(tat, next+t) {
			a.count(now)
			return true, now
		}
	}
}

// count adds one admission to the per-second window and raises the peak. The accept
// loop is one goroutine, so the reset of a new window cannot lose a concurrent count.
func (a *admission) count(now int64) {
	sec := now / int64(time.Second)
	if cur := a.sec.Load(); cur != sec && a.sec.CompareAndSwap(cur, sec) {
		a.n.Store(0)
	}
	n := a.n.Add(1)
	for {
		p := a.peak.Load()
		if n <= p || a.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// reserveRetry gives a connection refused at now a slot of its own at or after free
// (when the bucket has a token again), one admission interval after the slot handed
// out before it, plus a jitter within its interval; it returns the wait from now.
// Refused together, a crowd is told to come back one by one at the rate. Past
// maxRetryAfter it stops reserving and spreads the rest over maxRetryAfter's second
// half.
func (a *admission) reserveRetry(now, free int64, rate int) time.Duration {
	t := interval(rate)
	for {
		prev := a.retryAt.Load()
		slot := max(prev+t, free)
		if slot+t-now > int64(maxRetryAfter) {
			return maxRetryAfter/2 + rand.N(maxRetryAfter/2)
		}
		if a.retryAt.CompareAndSwap(prev, slot) {
			return time.Duration(slot-now) + time.Duration(rand.Int64N(t))
		}
	}
}

// PeakAdmissionsPerSecond is the most connections admitted in one second (a window
// of the process's monotonic clock) since the Manager started: a storm's peak, which
// a rate() over a scrape interval would average away.
func (m *Manager) PeakAdmissionsPerSecond() int { return int(m.adm.peak.Load()) }

// admit applies limits.handshake_rate to nc at accept. It reports false when it has
// refused nc (ERROR busy, on the refuse goroutine every refusal uses).
func (m *Manager) admit(nc net.Conn, remote net.Addr, s *Settings) bool {
	now := mono.Now()
	if s.HandshakeRate <= 0 {
		m.adm.count(now)
		return true
	}
	key, keyed := sourceOf(remote)
	ok, free, overShare := m.adm.admitFrom(key, keyed, now, s.HandshakeRate)
	if ok {
		return true
	}
	if fo, ok := m.obs.(FairnessObserver); ok {
		fo.RefusedBusy(overShare)
	}
	wait := m.adm.reserveRetry(now, free, s.HandshakeRate)
	// Rounded up: a client back a fraction of a millisecond before its turn would be
	// refused again. Never 0, which would read as "no hint".
	ms := max(int64((wait+time.Millisecond-1)/time.Millisecond), 1)
	m.refused(nc, ReasonBusy, protocol.CodeBusy,
		fmt.Sprintf("busy: admitting %d handshakes/s; retry in %d ms", s.HandshakeRate, ms), ms)
	m.logBusy(now, s.HandshakeRate)
	return false
}

// refused counts a refusal at accept and sends the ERROR off the accept loop.
func (m *Manager) refused(nc net.Conn, reason CloseReason, code protocol.Code, msg string, retryAfterMS int64) {
	m.obs.Closed(reason, false)
	if ao, ok := m.obs.(AdmissionObserver); ok {
		ao.Refused(code)
	}
	if m.Settings().TLS != nil {
		// The peer expects a TLS handshake, and a refusal must not cost one (that is
		// what the admission rate bounds): it gets a bare close, and backs off.
		nc.Close()
		return
	}
	m.live.Go(func() {
		refuse(nc, &protocol.ErrorPayload{Code: code, Message: msg, RetryAfterMS: retryAfterMS})
	})
}

// logBusy logs busy refusals at most once a second, with how many there were.
func (m *Manager) logBusy(now int64, rate int) {
	n := m.adm.unreported.Add(1)
	last := m.adm.lastLog.Load()
	if last != 0 && now-last < int64(time.Second) || !m.adm.lastLog.CompareAndSwap(last, now) {
		return
	}
	m.adm.unreported.Add(-n)
	top, topN := m.adm.src.mostRefused()
	m.log.Warn("connections refused: over limits.handshake_rate", zap.Int64("refused", n),
		zap.Int("handshake_rate", rate), zap.String("code", string(protocol.CodeBusy)),
		zap.Stringer("most_refused_source", top), zap.Int64("most_refused_source_count", topN))
}

// drainSpread is the spread a drain of n connections uses: drain.spread, or, when
// n connections could not all reconnect to the successor within fleetShare of
// limits.handshake_rate in that time, the time they need, capped at half of
// drain.timeout so that the last to move still have time to finish their reports.
// raised reports whether it is longer than drain.spread; capped, whether even
// that is too short for the rate.
func drainSpread(n int, s *Settings) (spread time.Duration, raised, capped bool) {
	spread = min(s.DrainSpread, s.DrainTimeout)
	if s.HandshakeRate <= 0 || n <= 0 {
		return spread, false, false
	}
	need := time.Duration(float64(n) / (fleetShare * float64(s.HandshakeRate)) * float64(time.Second))
	if need <= spread {
		return spread, false, false
	}
	limit := max(s.DrainTimeout/2, spread)
	if need > limit {
		return limit, limit > spread, true
	}
	return need, true, false
}

// logSpread says why a drain's spread is not drain.spread.
func (m *Manager) logSpread(s *Settings, n int, spread time.Duration, capped bool) {
	fields := []zap.Field{zap.Duration("configured", s.DrainSpread), zap.Duration("spread", spread),
		zap.Int("connections", n), zap.Int("handshake_rate", s.HandshakeRate)}
	why := fmt.Sprintf("%d connections at %d handshakes/s", n, s.HandshakeRate)
	if !capped {
		m.log.Info(fmt.Sprintf("drain.spread raised from %s to %s: %s", s.DrainSpread, roundSpread(spread), why), fields...)
		return
	}
	need := time.Duration(float64(n) / (fleetShare * float64(s.HandshakeRate)) * float64(time.Second))
	m.log.Warn(fmt.Sprintf("drain.spread is %s, at most half of drain.timeout: %s need %s; the successor will refuse some with ERROR busy",
		roundSpread(spread), why, roundSpread(need)), fields...)
}

// goawayHint is the reconnect_after_ms for a GOAWAY sent at now to the connection
// whose turn in the spread is due (both mono) with slot the time between two turns:
// it places the reconnect at a uniformly random point of the connection's own slot,
// [due, due+slot), so that the fleet arrives one by one at the spread's pace even
// when the drain's timer sends several GOAWAYs at once (it wakes at most once a
// millisecond). It is below half the time left until the deadline, so a client that
// obeys it still has time to move its reports.
func goawayHint(now, due int64, slot, left time.Duration) time.Duration {
	hint := time.Duration(max(due-now, 0))
	if slot > 0 {
		hint += rand.N(slot)
	}
	return max(min(hint, left/2), 0)
}

// drainState is what a drain publishes for GOAWAYs sent outside its schedule (to a
// connection that completes its handshake during the drain) and for the gauge of
// connections left.
type drainState struct {
	slot atomic.Int64 // time.Duration between two GOAWAYs of the spread
}

// DrainRemaining is the number of connections the drain still waits for: 0 unless
// a drain is under way.
func (m *Manager) DrainRemaining() int {
	if !m.draining.Load() {
		return 0
	}
	return m.reg.Len()
}
