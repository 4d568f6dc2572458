package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Client is a connection to a hawk server that survives reconnects and server
// upgrades. All methods are safe for concurrent use.
type Client struct {
	opts Options
	sem  chan struct{} // the window: one token per report in flight

	stats struct {
		sent, acked, nacked, resent, reconnects, goaways, dialFailures atomic.Uint64
	}

	mu           sync.Mutex
	nextSeq      uint64
	pending      map[uint64]*pending // every report accepted by Report or Go and not yet finished
	cur          *session            // where new reports go; nil while disconnected
	sessions     []*session          // live sessions: cur and any draining after GOAWAY
	retry        []*pending          // waiting to be resent after a retryable NACK
	scratch      []*pending
	cbHead       *pending // Go reports finished under c.mu whose done is still to be called
	cbTail       *pending
	welcome      protocol.Welcome
	connected    bool  // a connection has been established once (Dial's)
	failErr      error // a final handshake refusal on reconnect: the client is unusable
	closing      bool  // Close was called: no new reports
	stopped      bool  // Close finished waiting: everything is being torn down
	drainedSent  bool
	attempt      int // reconnect attempts since the last connection that worked
	goawayStreak int // GOAWAY handoffs in a row from connections that never worked
	pingSeq      uint64

	wake      chan struct{} // cap 1: the manager has something to look at
	closingCh chan struct{} // closed when Close starts
	drained   chan struct{} // closed when closing and nothing is pending
	stop      chan struct{} // closed when the manager must exit
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // manager and session goroutines
}

// pending is one report between Report (or Go) and its outcome. Records are pooled.
type pending struct {
	seq       uint64
	payload   []byte
	sess      *session // the session it is in flight on; nil while queued or waiting to retry
	done      chan error
	sent      bool // sent at least once (the next send counts as a resend)
	abandoned bool // the caller's ctx ended; the report finishes silently
	waiting   bool // in c.retry
	retryAt   int64
	attempts  int

	// A report made by Go: its outcome goes to cb, not to the done channel.
	async bool
	cb    func(seq uint64, err error)
	err   error    // the outcome, between completeLocked and the call to cb
	next  *pending // in the c.cbHead list
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

func getPending() *pending { return pendingPool.Get().(*pending) }

func putPending(p *pending) {
	payload := p.payload[:0]
	if cap(payload) > 64<<10 {
		payload = nil
	}
	*p = pending{payload: payload, done: p.done}
	pendingPool.Put(p)
}

// Stats are cumulative counters of a Client.
type Stats struct {
	Sent         uint64 // reports sent for the first time
	Acked        uint64 // reports acknowledged
	Nacked       uint64 // NACKs received (retryable ones included)
	Resent       uint64 // reports sent again (after a reconnect, a GOAWAY or a retryable NACK)
	Reconnects   uint64 // connections established after the first one
	Goaways      uint64 // GOAWAYs received
	DialFailures uint64 // connection attempts that failed (dial or handshake)
	InFlight     int    // reports in the window right now
}

// Dial connects to opts.Addr and completes the handshake. Connection failures and
// transient refusals (too many connections, shutting down) are retried with backoff
// until ctx ends; a final refusal (unauthorized, bad payload, …) is returned at once
// as the server's *client.ServerError. ctx bounds only the connecting: the
// returned Client reconnects on its own until Close.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	c := &Client{
		opts:      opts,
		sem:       make(chan struct{}, opts.MaxInFlight),
		nextSeq:   opts.FirstSeq,
		pending:   make(map[uint64]*pending, opts.MaxInFlight),
		wake:      make(chan struct{}, 1),
		closingCh: make(chan struct{}),
		drained:   make(chan struct{}),
		stop:      make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for attempt := 0; ; attempt++ {
		s, err := c.connect(ctx)
		if err == nil {
			c.install(s)
			c.wg.Add(1)
			go c.run()
			return c, nil
		}
		c.stats.dialFailures.Add(1)
		if ep, final := finalRefusal(err); final {
			c.cancel()
			opts.Logger.Warn("hawk: handshake refused", "addr", opts.Addr, "code", ep.Code, "message", ep.Message)
			return nil, ep
		}
		opts.Logger.Debug("hawk: connect failed", "addr", opts.Addr, "attempt", attempt, "err", err)
		if ctx.Err() == nil {
			t := time.NewTimer(backoff(attempt, opts.MinBackoff, opts.MaxBackoff))
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		c.cancel()
		if errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("hawk: connecting to %s: %w", opts.Addr, err)
		}
		return nil, fmt.Errorf("hawk: connecting to %s: %w (last attempt: %w)", opts.Addr, ctx.Err(), err)
	}
}

// Report sends payload and returns once the server has acknowledged it (persisted
// it). It blocks while the window (MaxInFlight) is full. The payload is copied, so
// the caller may reuse it at once. Lost connections and GOAWAYs never surface here:
// the report is resent on the next connection and Report keeps waiting, as long as
// ctx allows. Errors: ctx's error (the report may still be delivered), *NackError
// for a non-retryable NACK, ErrTooLarge, ErrClosed, or the server's
// *client.ServerError if it refused a reconnect for good (e.g. token revoked).
func (c *Client) Report(ctx context.Context, payload []byte) (seq uint64, err error) {
	if len(payload) > protocol.MaxPayloadLimit {
		return 0, ErrTooLarge
	}
	select {
	case c.sem <- struct{}{}:
	default:
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-c.closingCh:
			return 0, ErrClosed
		}
	}
	if err := ctx.Err(); err != nil {
		<-c.sem
		return 0, err
	}
	rec := getPending()
	rec.payload = append(rec.payload, payload...)
	if seq, err = c.enqueue(rec); err != nil {
		return 0, err
	}
	select {
	case err = <-rec.done:
		putPending(rec)
		return seq, err
	case <-ctx.Done():
		return seq, c.abandon(rec, ctx.Err())
	}
}

// Go is the asynchronous Report: it queues payload as a report and returns; done
// is later called exactly once with the report's seq and its outcome, which is
// what Report would have returned (nil once the server has persisted it). Go has
// the same guarantees as Report — the window, seqs, resends after a lost
// connection or a GOAWAY, retries after a retryable NACK — but no context: a
// report made by Go waits for its ACK until Close gives up on it (ErrClosed).
//
// Go blocks only while the window (MaxInFlight) is full; Close ends that wait
// with ErrClosed. It fails without waiting for an ACK with ErrTooLarge, ErrClosed
// (after Close) or the server's *client.ServerError (once a reconnect was refused
// for good), and then done is never called. The payload is copied, so the caller
// may reuse it at once. done may be nil; it may run before Go returns.
//
// done is called from the client's own goroutines — the connection's reader, as
// the ACKs are read; from Close's caller for reports Close gives up on — never
// from Go's caller, and possibly from two goroutines at once (for instance during
// a GOAWAY handoff, when two connections are being read). It must not block and
// must not call Close: until it returns, its connection reads no more ACKs (and
// writes none of the reports queued meanwhile: they go out together afterwards).
// It may call Go: the report's window slot is free before done is called, so a Go
// from done does not wait for a slot as long as nothing else took it meanwhile
// (with other goroutines filling the same window, such a Go could wait for an ACK
// that this very connection's reader is not reading).
//
// In steady state Go allocates nothing: the record is pooled and done is only
// stored, so a done built once (a method value, a closure) is reused for free.
func (c *Client) Go(payload []byte, done func(seq uint64, err error)) error {
	if len(payload) > protocol.MaxPayloadLimit {
		return ErrTooLarge
	}
	select {
	case c.sem <- struct{}{}:
	default:
		select {
		case c.sem <- struct{}{}:
		case <-c.closingCh:
			return ErrClosed
		}
	}
	rec := getPending()
	rec.payload = append(rec.payload, payload...)
	rec.async = true
	rec.cb = done
	_, err := c.enqueue(rec)
	return err
}

// enqueue gives rec (holding a window slot, payload filled in) its seq and sends
// it on the current connection, or leaves it queued for the next one. On error
// the slot and the record are released.
func (c *Client) enqueue(rec *pending) (uint64, error) {
	c.mu.Lock()
	if err := c.refuseLocked(len(rec.payload)); err != nil {
		c.mu.Unlock()
		<-c.sem
		putPending(rec)
		return 0, err
	}
	seq := c.nextSeq
	c.nextSeq++
	rec.seq = seq
	c.pending[seq] = rec
	if s := c.cur; s != nil {
		rec.sess = s
		s.inflight++
		rec.sent = true
		c.stats.sent.Add(1)
		s.queueFrame(protocol.TypeReport, seq, rec.payload)
	}
	c.mu.Unlock()
	return seq, nil
}

func (c *Client) refuseLocked(n int) error {
	switch {
	case c.closing:
		return ErrClosed
	case c.failErr != nil:
		return c.failErr
	case c.cur != nil && c.cur.welcome.MaxFrameSize > 0 && n > c.cur.welcome.MaxFrameSize:
		return fmt.Errorf("%w: %d bytes, the server accepts at most %d", ErrTooLarge, n, c.cur.welcome.MaxFrameSize)
	}
	return nil
}

// abandon handles a Report whose ctx ended. A report already on the wire stays in
// flight (it holds its window slot until acked or its connection ends) but is not
// resent; one not sent yet is dropped now.
func (c *Client) abandon(rec *pending, ctxErr error) error {
	c.mu.Lock()
	if c.pending[rec.seq] == rec {
		rec.abandoned = true // from here on the record belongs to the client
		if rec.sess == nil {
			c.completeLocked(rec, nil) // not on the wire: drop it now
		}
		c.mu.Unlock()
		return ctxErr
	}
	c.mu.Unlock()
	// Finished meanwhile: the outcome is in the channel.
	err := <-rec.done
	putPending(rec)
	return err
}

// completeLocked finishes a report: out of the window, and the outcome to its
// waiter (or back to the pool if the waiter is gone). The done of a report made by
// Go is called later, by unlock: a caller that may complete reports releases c.mu
// with c.unlock(), not c.mu.Unlock(). Caller holds c.mu.
func (c *Client) completeLocked(rec *pending, err error) {
	delete(c.pending, rec.seq)
	if s := rec.sess; s != nil {
		rec.sess = nil
		s.inflight--
		c.maybeRetireLocked(s)
	}
	if rec.waiting {
		rec.waiting = false
		if i := slices.Index(c.retry, rec); i >= 0 {
			c.retry = slices.Delete(c.retry, i, i+1)
		}
	}
	<-c.sem // before done is called: a Go from done finds the slot free
	switch {
	case rec.abandoned:
		putPending(rec)
	case rec.async:
		// done is called by unlock, once c.mu is released.
		rec.err = err
		if c.cbTail == nil {
			c.cbHead = rec
		} else {
			c.cbTail.next = rec
		}
		c.cbTail = rec
	default:
		rec.done <- err // cap 1 and exactly one outcome per record: never blocks
	}
	if c.closing && len(c.pending) == 0 && !c.drainedSent {
		c.drainedSent = true
		close(c.drained)
	}
}

// unlock releases c.mu, then calls the done of every report made by Go that
// finished while it was held, in the order they finished. Each record goes back
// to the pool before its done runs, so a Go from done may reuse it.
func (c *Client) unlock() {
	rec := c.cbHead
	c.cbHead, c.cbTail = nil, nil
	c.mu.Unlock()
	for rec != nil {
		next := rec.next
		cb, seq, err := rec.cb, rec.seq, rec.err
		putPending(rec)
		if cb != nil {
			cb(seq, err)
		}
		rec = next
	}
}

// retryLaterLocked takes a report off its connection after a retryable NACK; the
// manager resends it on the current connection after a short backoff.
func (c *Client) retryLaterLocked(rec *pending) {
	s := rec.sess
	rec.sess = nil
	s.inflight--
	rec.waiting = true
	rec.retryAt = mono() + int64(backoff(rec.attempts, c.opts.MinBackoff, c.opts.MaxBackoff))
	rec.attempts++
	c.retry = append(c.retry, rec)
	c.maybeRetireLocked(s)
	c.wakeManager()
}

// maybeRetireLocked closes a connection that was told GOAWAY once it has been
// replaced and has nothing left in flight.
func (c *Client) maybeRetireLocked(s *session) {
	if s != c.cur && s.goaway && s.inflight == 0 && !s.retiring {
		s.retiring = true
		s.fail(errRetired)
	}
}

// sendLocked sends recs (sorted by seq) on s. Caller holds c.mu.
func (c *Client) sendLocked(s *session, recs []*pending) (resent int) {
	if len(recs) == 0 {
		return 0
	}
	for _, r := range recs {
		r.sess = s
		if r.sent {
			resent++
		}
		r.sent = true
	}
	s.inflight += len(recs)
	c.stats.resent.Add(uint64(resent))
	c.stats.sent.Add(uint64(len(recs) - resent))
	s.queueReports(recs)
	return resent
}

func bySeq(a, b *pending) int { return cmp.Compare(a.seq, b.seq) }

// install makes s the current connection: every report not in flight anywhere
// (queued while disconnected, left over from a dead connection, waiting to retry)
// goes out first, in seq order, then new reports follow.
func (c *Client) install(s *session) {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		s.nc.Close()
		return
	}
	first := !c.connected
	c.connected = true
	old := c.cur
	c.cur = s
	c.sessions = append(c.sessions, s)
	c.welcome = s.welcome
	queued := c.scratch[:0]
	for _, r := range c.pending {
		if r.sess == nil {
			r.waiting = false
			queued = append(queued, r)
		}
	}
	clear(c.retry)
	c.retry = c.retry[:0]
	slices.SortFunc(queued, bySeq)
	resent := c.sendLocked(s, queued)
	clear(queued)
	c.scratch = queued[:0]
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

// sessionEnded runs once per session, on its reader goroutine, after the socket is
// closed. Whatever was in flight on it and not acked goes to the current connection
// (or waits for the next one): acked reports are never resent.
func (c *Client) sessionEnded(s *session) {
	err := s.err
	c.mu.Lock()
	if i := slices.Index(c.sessions, s); i >= 0 {
		c.sessions = slices.Delete(c.sessions, i, i+1)
	}
	if c.cur == s {
		c.cur = nil
		if s.progress.Load() || mono()-s.born > int64(c.opts.MaxBackoff) {
			c.attempt = 0
		}
	}
	moved := c.scratch[:0]
	for _, r := range c.pending {
		if r.sess != s {
			continue
		}
		if r.abandoned {
			c.completeLocked(r, nil)
			continue
		}
		r.sess = nil
		moved = append(moved, r)
	}
	s.inflight = 0
	resent := 0
	var to *session
	switch {
	case c.failErr != nil:
		for _, r := range moved {
			c.completeLocked(r, c.failErr)
		}
	case c.stopped:
		// Close fails them.
	case c.cur != nil:
		to = c.cur
		slices.SortFunc(moved, bySeq)
		resent = c.sendLocked(to, moved)
	}
	clear(moved)
	c.scratch = moved[:0]
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

func (c *Client) wakeManager() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) emit(e Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(e)
	}
}

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
		now := mono()
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
	if c.stopped || c.failErr != nil || (c.closing && len(c.pending) == 0) {
		return false, 0
	}
	if c.cur == nil {
		return true, backoff(c.attempt, c.opts.MinBackoff, c.opts.MaxBackoff)
	}
	if c.cur.goaway && !c.cur.handoffTried {
		if c.goawayStreak == 0 {
			return true, 0
		}
		// The connection that sent this GOAWAY never worked (a server that says
		// GOAWAY right after WELCOME): do not spin.
		return true, backoff(c.goawayStreak-1, c.opts.MinBackoff, c.opts.MaxBackoff)
	}
	return false, 0
}

// flushRetriesLocked resends the retries that are due on the current connection
// and returns when the next one is due (0: none waiting).
func (c *Client) flushRetriesLocked(now int64) (next int64, resent int) {
	if len(c.retry) == 0 || c.cur == nil {
		return 0, 0 // with no connection, install sends them
	}
	due := c.scratch[:0]
	keep := c.retry[:0]
	for _, r := range c.retry {
		if r.retryAt <= now {
			r.waiting = false
			due = append(due, r)
			continue
		}
		keep = append(keep, r)
		if next == 0 || r.retryAt < next {
			next = r.retryAt
		}
	}
	clear(c.retry[len(keep):])
	c.retry = keep
	slices.SortFunc(due, bySeq)
	resent = c.sendLocked(c.cur, due)
	clear(due)
	c.scratch = due[:0]
	return next, resent
}

// tickPeriodLocked is the heartbeat ticker's period: a quarter of the shortest
// heartbeat interval in force, so a PING goes out within 1.25 intervals of silence
// and a dead connection is noticed within 3.25.
func (c *Client) tickPeriodLocked() time.Duration {
	var p time.Duration
	for _, s := range c.sessions {
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

// heartbeat checks every live connection: PING when nothing was sent (or nothing
// received) for an interval, close when the server has been silent for 3 intervals,
// when a write is stuck, or past a GOAWAY deadline.
func (c *Client) heartbeat() {
	now := mono()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sessions {
		hb := int64(s.hb)
		switch ws := s.writeStart.Load(); {
		case now-s.lastRecv.Load() > 3*hb:
			s.fail(errHeartbeatTimeout)
		case ws != 0 && now-ws > 3*hb:
			s.fail(errWriteStuck)
		case s.goawayEnd != 0 && now > s.goawayEnd:
			s.fail(errGoawayDeadline)
		case now-s.lastSend.Load() >= hb || now-s.lastRecv.Load() >= hb:
			// Idle, or silent server: a PONG proves the connection alive even when
			// acks are slow in coming.
			c.pingSeq++
			s.ping(c.pingSeq)
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
	handoff := c.cur != nil
	if handoff {
		c.cur.handoffTried = true
		c.goawayStreak++
	} else {
		c.attempt++
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
		// After a failed handoff the old connection stays in use until it ends.
		c.opts.Logger.Info("hawk: connect failed", "addr", c.opts.Addr, "handoff", handoff, "err", err)
		return
	}
	c.install(s)
}

// failAll makes the client unusable after a final refusal: every report not in
// flight on a live connection fails with err, and so do later ones.
func (c *Client) failAll(err error) {
	c.mu.Lock()
	if c.failErr == nil {
		c.failErr = err
	}
	for _, r := range c.pending {
		if r.sess == nil {
			c.completeLocked(r, c.failErr)
		}
	}
	c.unlock()
}

// Close stops new reports (they get ErrClosed), waits up to 5s for the reports in
// flight to be acknowledged — reconnecting if need be — then closes the connections.
// Reports still unacknowledged then return ErrClosed (the done of those made by Go
// is called with ErrClosed, from Close's goroutine). When Close returns, every
// done has been called. Close is idempotent; it must not be called from a done.
func (c *Client) Close() error {
	c.closeOnce.Do(c.close)
	return nil
}

func (c *Client) close() {
	c.mu.Lock()
	c.closing = true
	close(c.closingCh)
	if len(c.pending) == 0 && !c.drainedSent {
		c.drainedSent = true
		close(c.drained)
	}
	c.mu.Unlock()
	c.wakeManager()

	t := time.NewTimer(closeWait)
	select {
	case <-c.drained:
	case <-t.C:
	}
	t.Stop()

	c.mu.Lock()
	c.stopped = true
	live := slices.Clone(c.sessions)
	c.mu.Unlock()
	c.cancel() // aborts a connection attempt in progress
	close(c.stop)
	for _, s := range live {
		s.fail(ErrClosed)
	}
	c.wg.Wait()

	c.mu.Lock()
	for _, r := range c.pending {
		c.completeLocked(r, ErrClosed)
	}
	c.unlock()
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Sent:         c.stats.sent.Load(),
		Acked:        c.stats.acked.Load(),
		Nacked:       c.stats.nacked.Load(),
		Resent:       c.stats.resent.Load(),
		Reconnects:   c.stats.reconnects.Load(),
		Goaways:      c.stats.goaways.Load(),
		DialFailures: c.stats.dialFailures.Load(),
		InFlight:     len(c.sem),
	}
}

// Welcome returns the WELCOME of the current connection (of the last one while
// disconnected).
func (c *Client) Welcome() protocol.Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}
