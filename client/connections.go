package client

import (
	"errors"
	"slices"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// This file is the Client's side of its connections: which one new reports go
// to, what a session's events do to the reports and the client, and how a
// connection told GOAWAY is retired once drained.

// install makes s the current connection: every report not in flight anywhere
// (queued while disconnected, left over from a dead connection, waiting to retry)
// goes out first, in seq order, then new reports follow.
func (c *Client) install(s *session) {
	c.mu.Lock()
	if c.life.state == stateStopped {
		c.mu.Unlock()
		s.nc.Close()
		return
	}
	first := c.life.to(stateOpen) // only Dial's connection leaves stateDialing
	old := c.conns.cur
	c.conns.cur = s
	c.conns.live = append(c.conns.live, s)
	c.conns.welcome = s.welcome
	queued := c.out.takeUnplaced()
	resent := c.sendLocked(s, queued)
	c.out.recycle(queued)
	if old != nil {
		old.goaway = true // a replaced connection only drains
		c.maybeRetireLocked(old)
	}
	if !first {
		c.stats.reconnects.Add(1)
	}
	c.wg.Add(2)
	c.mu.Unlock()
	go s.readLoop()
	go s.writeLoop()

	w := s.welcome
	c.opts.Logger.Info("hawk: connected", "addr", c.opts.Addr, "server_id", w.ServerID, "server_version", w.ServerVersion,
		"conn_id", w.ConnID, "heartbeat", s.hb, "resent", resent)
	c.emit(Event{Kind: EventConnected, ConnID: w.ConnID})
	if resent > 0 {
		c.emit(Event{Kind: EventResend, ConnID: w.ConnID, N: resent})
	}
}

// sendLocked sends recs (sorted by seq) on s and returns how many were resends.
// What does not fit in s's limit (the server's max_in_flight) is held until ACKs
// make room (pumpLocked). Caller holds c.mu.
func (c *Client) sendLocked(s *session, recs []*pending) (resent int) {
	if room := max(s.limit-s.inflight, 0); len(recs) > room {
		c.out.hold(recs[room:])
		recs = recs[:room]
	}
	if len(recs) == 0 {
		return 0
	}
	resent = c.out.sendAllOn(s, recs)
	c.stats.resent.Add(uint64(resent))
	c.sent += uint64(len(recs) - resent)
	c.queueAllLocked(s, recs)
	return resent
}

// pumpLocked sends held reports on the current connection as far as its limit
// allows. Caller holds c.mu.
func (c *Client) pumpLocked() (resent int) {
	s := c.conns.cur
	if s == nil || len(c.out.held) == 0 || s.inflight >= s.limit {
		return 0
	}
	batch := c.out.takeHeld(s.limit - s.inflight)
	resent = c.sendLocked(s, batch)
	c.out.recycle(batch)
	return resent
}

// sessionEvents acts on a read's worth of events from s under one lock, then calls
// the done of the Go reports they finished. The writer of s is held meanwhile, so
// the reports those callbacks make go out in one write.
func (c *Client) sessionEvents(s *session, evs []sessionEvent) {
	var gw *protocol.Goaway
	c.mu.Lock()
	for i := range evs {
		ev := &evs[i]
		switch ev.kind {
		case eventAcked:
			// An ACK from any connection means the server has the report, whichever
			// connection it was last sent on. A range covers only seqs the server
			// read on this connection and made durable (ParseAckRanges bounds it).
			c.ackedLocked(ev.seq, ev.last)
		case eventNacked:
			c.stats.nacked.Add(1)
			rec := c.out.lookup(ev.seq)
			if rec == nil || rec.sess != s {
				continue // stale: the report has moved on
			}
			if ev.nack.Retryable && !rec.abandoned {
				c.retryLaterLocked(rec, time.Duration(ev.nack.RetryAfterMS)*time.Millisecond)
			} else {
				c.completeLocked(rec, &NackError{Seq: ev.seq, Nack: *ev.nack})
			}
		case eventUpload:
			c.ups.deliver(s, *ev.upload)
		case eventGoaway:
			c.stats.goaways.Add(1)
			gw = ev.goaway
			c.goawayLocked(s, gw, ev.worked)
		}
	}
	c.pumpLocked()
	if c.calls.empty() {
		c.mu.Unlock()
	} else {
		c.callDoneOn(s)
	}
	if gw != nil {
		c.opts.Logger.Info("hawk: server sent GOAWAY", "addr", c.opts.Addr, "conn_id", s.welcome.ConnID, "reason", gw.Reason, "deadline_ms", gw.DeadlineMS)
		c.emit(Event{Kind: EventGoaway, ConnID: s.welcome.ConnID, Reason: gw.Reason})
	}
}

// callDoneOn releases c.mu and calls the done of the Go reports that finished,
// on s's reader. Meanwhile the REPORT frames queued for s collect in s.batch,
// under c.mu, which Go holds anyway (one lock per report, not c.mu and then s's
// output lock), and s's other output waits (hold); then it is written, in one
// write as far as the socket takes it. Caller holds c.mu; s's reader only.
func (c *Client) callDoneOn(s *session) {
	s.hold()
	s.collecting = true
	s.batch = s.batchSpare[:0]
	s.batchSpare = nil
	list := c.calls.take(s.callsSpare)
	s.callsSpare = nil
	c.mu.Unlock()
	callDone(list)
	s.callsSpare = list[:0]
	c.mu.Lock()
	s.collecting = false
	direct, owed, spare := s.endHold(s.batch) // under c.mu: later reports go behind the batch
	s.batch = nil
	c.mu.Unlock()
	if b := s.flushHeld(direct, owed); direct != nil {
		spare = b
	}
	s.batchSpare = spare
}

// queueLocked queues the REPORT frame of rec, just placed on s. Caller holds c.mu.
func (c *Client) queueLocked(s *session, rec *pending) {
	if s.collecting {
		s.batch = protocol.AppendFrame(s.batch, protocol.TypeReport, rec.seq, rec.payload)
		return
	}
	s.queueFrame(protocol.TypeReport, rec.seq, rec.payload)
}

// queueAllLocked queues the REPORT frames of recs (in order), just placed on s.
// Caller holds c.mu.
func (c *Client) queueAllLocked(s *session, recs []*pending) {
	if s.collecting {
		for _, r := range recs {
			s.batch = protocol.AppendFrame(s.batch, protocol.TypeReport, r.seq, r.payload)
		}
		return
	}
	s.queueReports(recs)
}

// goawayLocked records the server's GOAWAY on s (PROTOCOL.md 6.5). The deadline
// is counted from receipt; deadline_ms 0 means it has passed: move now. Reason
// upgrade: the manager dials the successor reconnect_after_ms after receipt (never
// after the deadline), without the reconnect backoff, and s stays current until
// the successor has WELCOME. Reason shutdown: there is no successor; s takes no
// new report, is read until its reports are answered or the deadline, and the
// manager reconnects with the normal backoff. A repeated GOAWAY is ignored.
func (c *Client) goawayLocked(s *session, gw *protocol.Goaway, worked bool) {
	if s.hasDeadline {
		return
	}
	now := mono.Now()
	deadline := max(gw.DeadlineMS, 0)
	s.hasDeadline = true
	s.goawayEnd = now + deadline*int64(time.Millisecond)
	s.moveAt = now + min(max(gw.ReconnectAfterMS, 0), deadline)*int64(time.Millisecond)
	s.goaway = true
	s.shutdown = gw.Reason == "shutdown"
	if gw.Reason == goawayCredentials {
		c.tlsr.forget()
	}
	if worked {
		c.policy.goawayStreak = 0
	} else {
		c.policy.goawayStreak++
	}
	if s.shutdown && c.conns.cur == s {
		c.conns.cur = nil // new reports wait for the next connection
		if s.progress.Load() {
			c.policy.attempt = 0
		}
		c.maybeRetireLocked(s)
	}
	c.wakeManager()
}

// retryLaterLocked takes a report off its connection after a retryable NACK; the
// manager resends it on the current connection after a short backoff.
func (c *Client) retryLaterLocked(rec *pending, hint time.Duration) {
	if s := c.out.retryLater(rec, mono.Now(), hint); s != nil {
		c.maybeRetireLocked(s)
	}
	c.pumpLocked()
	c.wakeManager()
}

// maybeRetireLocked closes a connection that was told GOAWAY once it has been
// replaced and has nothing left in flight.
func (c *Client) maybeRetireLocked(s *session) {
	if s != c.conns.cur && s.goaway && s.inflight == 0 && !s.retiring {
		s.retiring = true
		s.fail(errRetired)
	}
}

// sessionEnded runs once per session, on its reader goroutine, after the socket is
// closed. Whatever was in flight on it and not acked goes to the current connection
// (or waits for the next one): acked reports are never resent.
func (c *Client) sessionEnded(s *session) {
	err := s.err
	c.mu.Lock()
	if i := slices.Index(c.conns.live, s); i >= 0 {
		c.conns.live = slices.Delete(c.conns.live, i, i+1)
	}
	if c.conns.cur == s {
		c.conns.cur = nil
		if s.progress.Load() || mono.Now()-s.born > int64(c.opts.MaxBackoff) {
			c.policy.attempt = 0
		}
	}
	if ep, final := finalRefusal(err); final {
		// A final ERROR on an established connection (token revoked, a protocol
		// error): retrying cannot help. Reports fail with it; no reconnect.
		c.opts.Logger.Error("hawk: server refused for good; failing reports", "addr", c.opts.Addr, "code", ep.Code, "message", ep.Message)
		c.failLocked(ep)
	} else if d := retryAfter(err); d > 0 {
		c.policy.notBefore = max(c.policy.notBefore, mono.Now()+int64(d))
	}
	moved := c.out.takeFrom(s)
	kept := moved[:0]
	for _, r := range moved {
		if r.abandoned {
			c.completeLocked(r, nil) // its caller is gone: not worth a resend
			continue
		}
		kept = append(kept, r)
	}
	resent := 0
	var to *session
	switch {
	case c.life.failErr != nil:
		for _, r := range kept {
			c.completeLocked(r, c.life.failErr)
		}
	case c.life.state == stateStopped:
		// Close fails them.
	case c.conns.cur != nil:
		to = c.conns.cur
		resent = c.sendLocked(to, kept)
		resent += c.pumpLocked()
	}
	c.out.recycle(moved)
	c.wakeManager()
	c.unlock()

	planned := errors.Is(err, errRetired) || errors.Is(err, ErrClosed)
	if planned {
		c.opts.Logger.Debug("hawk: connection closed", "addr", c.opts.Addr, "conn_id", s.welcome.ConnID, "reason", err)
		err = nil
	} else {
		c.opts.Logger.Info("hawk: connection lost", "addr", c.opts.Addr, "conn_id", s.welcome.ConnID, "err", err)
	}
	c.emit(Event{Kind: EventDisconnected, ConnID: s.welcome.ConnID, Err: err})
	if resent > 0 {
		c.emit(Event{Kind: EventResend, ConnID: to.welcome.ConnID, N: resent})
	}
}
