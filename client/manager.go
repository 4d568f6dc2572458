package client

import (
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// This file is the manager goroutine, one per Client, and the policy it applies:
// when to reconnect (backoff, or at once after a GOAWAY), when to resend a NACKed
// report, and when a connection is dead (heartbeats).

// run is the manager goroutine: reconnects (with backoff, or at once after a
// GOAWAY), resends retryable NACKs when due, and checks heartbeats with one ticker.
func (c *Client) run() {
	defer c.wg.Done()
	var period time.Duration
	c.mu.Lock()
	period = c.tickPeriodLocked()
	c.mu.Unlock()
	tick := time.NewTicker(period)
	defer tick.Stop()
	dialT := time.NewTimer(time.Hour)
	dialT.Stop()
	retryT := time.NewTimer(time.Hour)
	retryT.Stop()
	defer dialT.Stop()
	defer retryT.Stop()
	dialArmed := false
	for {
		now := mono.Now()
		c.mu.Lock()
		need, delay := c.dialPlanLocked()
		next, resent := c.flushRetriesLocked(now)
		p := c.tickPeriodLocked()
		c.mu.Unlock()
		if resent > 0 {
			c.emit(Event{Kind: EventResend, N: resent})
		}
		if need && !dialArmed {
			dialT.Reset(delay)
			dialArmed = true
		} else if !need && dialArmed {
			dialT.Stop()
			dialArmed = false
		}
		if next != 0 {
			retryT.Reset(time.Duration(next - now))
		}
		if p != period && p > 0 {
			tick.Reset(p)
			period = p
		}
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-retryT.C:
		case <-tick.C:
			c.heartbeat()
		case <-dialT.C:
			dialArmed = false
			c.redial()
		}
	}
}

// dialPlanLocked says whether a new connection is wanted and after what delay.
func (c *Client) dialPlanLocked() (bool, time.Duration) {
	if !c.life.wantsConnection() {
		return false, 0
	}
	now := mono.Now()
	cur := c.conns.cur
	if cur == nil {
		d := backoff(c.policy.attempt, c.opts.MinBackoff, c.opts.MaxBackoff)
		if c.policy.notBefore > now {
			d += time.Duration(c.policy.notBefore - now) // the server's retry_after_ms, then jitter
		}
		return true, d
	}
	if cur.goaway && !cur.shutdown && cur.hasDeadline {
		return true, c.handoffDelayLocked(cur, now)
	}
	return false, 0
}

// handoffDelayLocked is how long to wait before the next attempt to open the
// successor of cur, which the server told GOAWAY (reason upgrade). The first
// attempt starts reconnect_after_ms after the GOAWAY, with no reconnect backoff;
// after a failed attempt the backoff is capped at half the time left before the
// deadline, so every attempt starts before it and the migration completes within
// the deadline the server gave. Once the deadline has passed, the normal backoff
// applies. An ERROR busy's retry_after_ms is the server's explicit word and is
// honoured in every case.
func (c *Client) handoffDelayLocked(cur *session, now int64) time.Duration {
	var d time.Duration
	switch left := time.Duration(cur.goawayEnd - now); {
	case cur.handoffFails == 0:
		d = time.Duration(max(cur.moveAt-now, 0))
		// A server that sends GOAWAY, with reconnect_after_ms 0, to every new
		// connection before it answers anything is broken; do not spin on it. The
		// floor is MinBackoff, still capped by the deadline. A real upgrade never
		// gets here: its new connection reaches a process that is not draining.
		if c.policy.goawayStreak > 3 && d < c.opts.MinBackoff {
			d = min(c.opts.MinBackoff, max(left, 0)/2)
		}
	case left > 0:
		d = min(backoff(cur.handoffFails-1, c.opts.MinBackoff, c.opts.MaxBackoff), left/2)
	default:
		d = backoff(cur.handoffFails-1, c.opts.MinBackoff, c.opts.MaxBackoff)
	}
	if c.policy.notBefore > now {
		d = max(d, time.Duration(c.policy.notBefore-now)+backoff(0, c.opts.MinBackoff, c.opts.MaxBackoff))
	}
	return d
}

// flushRetriesLocked resends the retries that are due on the current connection
// and returns when the next one is due (0: none waiting).
func (c *Client) flushRetriesLocked(now int64) (next int64, resent int) {
	if len(c.out.retry) == 0 || c.conns.cur == nil {
		return 0, 0 // with no connection, install sends them
	}
	due, next := c.out.takeDue(now)
	resent = c.sendLocked(c.conns.cur, due)
	c.out.recycle(due)
	return next, resent
}

// tickPeriodLocked is the heartbeat ticker's period: a quarter of the shortest
// heartbeat interval in force, so a PING goes out within 1.25 intervals of silence
// and a dead connection is noticed within 3.25.
func (c *Client) tickPeriodLocked() time.Duration {
	var p time.Duration
	for _, s := range c.conns.live {
		if q := max(s.hb/4, time.Millisecond); p == 0 || q < p {
			p = q
		}
	}
	if p == 0 {
		p = max(c.opts.HeartbeatInterval/4, time.Millisecond)
		if c.opts.HeartbeatInterval == 0 {
			p = DefaultHeartbeatInterval / 4
		}
	}
	return p
}

// heartbeat checks every live connection (PROTOCOL.md 6.4): PING when nothing was
// sent or nothing was received for an interval, close when the server has been
// silent for 3 intervals, when a write is stuck, or when the server kept a
// connection open past its GOAWAY deadline.
func (c *Client) heartbeat() {
	now := mono.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.conns.live {
		hb := int64(s.hb)
		switch ws := s.writeStart.Load(); {
		case now-s.lastRecv.Load() > 3*hb:
			s.fail(errHeartbeatTimeout)
		case ws != 0 && now-ws > 3*hb:
			s.fail(errWriteStuck)
		case s.hasDeadline && now > s.goawayEnd+int64(goawayGrace):
			// The server closes at the deadline, after the ACKs it queued before it:
			// the connection is read until then, and given up only if the server
			// does not close it.
			s.fail(errGoawayDeadline)
		case now-s.lastSend.Load() >= hb || now-s.lastRecv.Load() >= hb:
			// Idle, or silent server: a PONG proves the connection alive even when
			// acks are slow in coming.
			c.policy.pingSeq++
			s.ping(c.policy.pingSeq)
		}
	}
}

// redial makes one connection attempt: a replacement after GOAWAY, or a reconnect.
func (c *Client) redial() {
	c.mu.Lock()
	if need, _ := c.dialPlanLocked(); !need {
		c.mu.Unlock()
		return
	}
	from := c.conns.cur // the connection told GOAWAY (upgrade), or nil: a reconnect
	handoff := from != nil
	if !handoff {
		c.policy.attempt++
	}
	c.mu.Unlock()

	c.emit(Event{Kind: EventReconnectAttempt})
	s, err := c.connect(c.ctx)
	if err != nil {
		c.stats.dialFailures.Add(1)
		c.emit(Event{Kind: EventDialFailed, Err: err})
		if ep, final := finalRefusal(err); final {
			c.opts.Logger.Error("hawk: reconnect refused for good; failing reports", "addr", c.opts.Addr, "code", ep.Code, "message", ep.Message)
			c.failAll(ep)
			return
		}
		c.mu.Lock()
		if d := retryAfter(err); d > 0 {
			c.policy.notBefore = max(c.policy.notBefore, mono.Now()+int64(d))
		}
		if handoff {
			// The old connection stays in use meanwhile; the next attempt comes
			// before the deadline (handoffDelayLocked).
			from.handoffFails++
		}
		c.mu.Unlock()
		c.opts.Logger.Info("hawk: connect failed", "addr", c.opts.Addr, "handoff", handoff, "err", err)
		return
	}
	c.mu.Lock()
	c.policy.notBefore = 0
	c.mu.Unlock()
	c.install(s)
}

// failAll makes the client unusable after a final refusal: every report not in
// flight on a live connection fails with err, and so do later ones.
func (c *Client) failAll(err error) {
	c.mu.Lock()
	c.failLocked(err)
	c.unlock()
}

// failLocked is failAll with c.mu held.
func (c *Client) failLocked(err error) {
	c.life.fail(err)
	unplaced := c.out.takeUnplaced()
	for _, r := range unplaced {
		c.completeLocked(r, c.life.failErr)
	}
	c.out.recycle(unplaced)
}
