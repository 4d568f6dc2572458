package client

import (
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
//
// Its state is split by concern, each part in its own file: the window
// (window.go) needs no lock; under mu are the lifecycle (lifecycle.go), the
// outbox of unfinished reports (outbox.go), the Go callbacks waiting for mu to be
// released (callbacks.go), the connections and what their events do
// (connections.go) and the reconnect and heartbeat policy of the manager
// goroutine (manager.go). One lock, because a report's outcome, its connection's
// fate and the client's state change together, and one lock per report is the
// budget.
type Client struct {
	opts   Options
	window *window

	tlsr  *tlsResume // nil without TLS
	stats struct {
		nacked, resent, reconnects, goaways, dialFailures, resumed atomic.Uint64
	}

	mu    sync.Mutex // guards everything below, except the channels
	life  lifecycle
	out   outbox
	calls doneQueue
	conns struct {
		cur     *session   // where new reports go; nil while disconnected
		live    []*session // cur and any draining after GOAWAY
		welcome protocol.Welcome
	}
	policy struct {
		attempt int // reconnect attempts since the last connection that worked
		// goawayStreak counts connections in a row that got GOAWAY before any ACK
		// or PONG. It only guards against a broken server that sends every new
		// connection GOAWAY with reconnect_after_ms 0 (see handoffDelayLocked).
		goawayStreak int
		// notBefore is the mono.Now() before which no connection is attempted: the
		// server's retry_after_ms (ERROR busy); 0 = none.
		notBefore int64
		pingSeq   uint64
	}

	ups uploadRouter // answers to Upload (upload.go)

	// The two counts bumped for every report are plain fields under mu, which
	// their updaters hold anyway, rather than atomics: a locked instruction less
	// per report for each.
	sent, acked uint64
	// free keeps the records of finished Go reports (small payloads only, at most
	// a window's worth) for the next ones, under mu, which Go takes anyway: the
	// pool's Get and Put cost more than the rest of a record's bookkeeping, and a
	// client's own records stay warm in its cache.
	free []*pending

	wake      chan struct{} // cap 1: the manager has something to look at
	stop      chan struct{} // closed when the manager must exit
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // manager and session goroutines
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
	TLSResumed   uint64 // TLS connections that resumed a session (no full handshake)
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
		opts:   opts,
		tlsr:   newTLSResume(opts.TLS),
		window: newWindow(opts.MaxInFlight),
		life:   newLifecycle(),
		out:    newOutbox(opts.FirstSeq, opts.MaxInFlight, opts.MinBackoff, opts.MaxBackoff),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
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
		c.emit(Event{Kind: EventDialFailed, Err: err})
		if ep, final := finalRefusal(err); final {
			c.cancel()
			opts.Logger.Warn("hawk: handshake refused", "addr", opts.Addr, "code", ep.Code, "message", ep.Message)
			return nil, ep
		}
		opts.Logger.Debug("hawk: connect failed", "addr", opts.Addr, "attempt", attempt, "err", err)
		if ctx.Err() == nil {
			t := time.NewTimer(retryAfter(err) + backoff(attempt, opts.MinBackoff, opts.MaxBackoff))
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
	rec, err := c.admit(ctx, payload)
	if err != nil {
		return 0, err
	}
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
// In steady state Go allocates nothing: the record is reused and done is only
// stored, so a done built once (a method value, a closure) is reused for free.
func (c *Client) Go(payload []byte, done func(seq uint64, err error)) error {
	if len(payload) > protocol.MaxPayloadLimit {
		return ErrTooLarge
	}
	// No context: only Close ends Go's wait for a slot.
	if err := c.window.acquire(context.Background(), c.life.closing); err != nil {
		return err
	}
	var rec *pending
	if len(payload) > maxFreePayload {
		// A large copy is made before taking the lock.
		rec = getPending()
		rec.payload = append(rec.payload, payload...)
	}
	c.mu.Lock()
	if err := c.refuseLocked(len(payload)); err != nil {
		c.mu.Unlock()
		c.window.release()
		if rec != nil {
			putPending(rec)
		}
		return err
	}
	if rec == nil {
		rec = c.freeRecordLocked()
		rec.payload = append(rec.payload, payload...)
	}
	rec.async = true
	rec.cb = done
	c.enqueueLocked(rec)
	c.mu.Unlock()
	return nil
}

// admit is Report's start: the size check, the one wait for a window slot, and a
// pooled record holding a copy of payload.
func (c *Client) admit(ctx context.Context, payload []byte) (*pending, error) {
	if len(payload) > protocol.MaxPayloadLimit {
		return nil, ErrTooLarge
	}
	if err := c.window.acquire(ctx, c.life.closing); err != nil {
		return nil, err
	}
	rec := getPending()
	rec.payload = append(rec.payload, payload...)
	return rec, nil
}

// enqueue gives rec (holding a window slot, payload filled in) its seq and sends
// it on the current connection, or leaves it queued for the next one. On error
// the slot and the record are released.
func (c *Client) enqueue(rec *pending) (uint64, error) {
	c.mu.Lock()
	if err := c.refuseLocked(len(rec.payload)); err != nil {
		c.mu.Unlock()
		c.window.release()
		putPending(rec)
		return 0, err
	}
	seq := c.enqueueLocked(rec)
	c.mu.Unlock()
	return seq, nil
}

// enqueueLocked is enqueue once the report is taken. Caller holds c.mu.
func (c *Client) enqueueLocked(rec *pending) uint64 {
	seq := c.out.add(rec)
	if s := c.conns.cur; s != nil {
		if s.inflight < s.limit && len(c.out.held) == 0 {
			c.out.sendOn(s, rec) // a new report: never a resend
			c.sent++
			c.queueLocked(s, rec)
		} else {
			c.out.holdOne(rec) // the connection is at the server's max_in_flight
		}
	}
	return seq
}

// maxFreePayload is the largest payload whose record is kept in Client.free:
// beyond it the payload is copied outside the lock and the record goes back to
// the pool, which the GC may empty, rather than pinning its buffer per client.
const maxFreePayload = 4 << 10

// freeRecordLocked returns a record for a new report made by Go. Caller holds c.mu.
func (c *Client) freeRecordLocked() *pending {
	if n := len(c.free); n > 0 {
		rec := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return rec
	}
	return getPending()
}

// recycleLocked takes back the record of a finished Go report. Caller holds c.mu.
func (c *Client) recycleLocked(rec *pending) {
	if cap(rec.payload) > maxFreePayload || len(c.free) >= c.opts.MaxInFlight {
		putPending(rec)
		return
	}
	*rec = pending{payload: rec.payload[:0], done: rec.done}
	c.free = append(c.free, rec)
}

// refuseLocked says why a report of n bytes cannot be taken now, or nil.
func (c *Client) refuseLocked(n int) error {
	if err := c.life.refusal(); err != nil {
		return err
	}
	if s := c.conns.cur; s != nil && s.welcome.MaxFrameSize > 0 && n > s.welcome.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, the server accepts at most %d", ErrTooLarge, n, s.welcome.MaxFrameSize)
	}
	return nil
}

// abandon handles a Report whose ctx ended. A report already on the wire stays in
// flight (it holds its window slot until acked or its connection ends) but is not
// resent; one not sent yet is dropped now.
func (c *Client) abandon(rec *pending, ctxErr error) error {
	c.mu.Lock()
	if c.out.lookup(rec.seq) == rec {
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

// completeLocked finishes a report: out of the outbox and the window, and the
// outcome to its waiter (or back to the pool if the waiter is gone). The done of a
// report made by Go is called later, by unlock: a caller that may complete reports
// releases c.mu with c.unlock(), not c.mu.Unlock(). Caller holds c.mu.
func (c *Client) completeLocked(rec *pending, err error) {
	c.window.release() // before done is called: a Go from done finds the slot free
	c.finishLocked(rec, err)
}

// finishLocked is completeLocked but for the window slot, which the caller gives
// back. Caller holds c.mu.
func (c *Client) finishLocked(rec *pending, err error) {
	if s := c.out.remove(rec); s != nil {
		c.maybeRetireLocked(s)
	}
	switch {
	case rec.abandoned:
		putPending(rec)
	case rec.async:
		if rec.cb != nil {
			c.calls.push(rec.cb, rec.seq, err) // called by unlock, once c.mu is released
		}
		c.recycleLocked(rec)
	default:
		rec.done <- err // cap 1 and exactly one outcome per record: never blocks
	}
	c.life.closingDrained(c.out.len())
}

// ackedLocked completes the reports first..last that are still unfinished: the
// server has them. The window slots of reports made by Go are given back at the
// end, in one atomic operation for the range rather than one per report: their
// done is called only once c.mu is released, after that. Caller holds c.mu.
//
// A report made by Go, in flight (the usual case), is finished here rather than
// by finishLocked, with what is the same for the whole range done once at its
// end: the outbox's oldest seq moved past the range, the connection it was in
// flight on retired if that was its last report, Close's wait ended if no report
// is left. Nothing between sees the difference: c.mu is held throughout.
func (c *Client) ackedLocked(first, last uint64) {
	freed := 0
	var on *session // the connection of the last report finished here
	for seq := first; ; seq++ {
		if rec := c.out.lookup(seq); rec != nil {
			c.acked++
			switch {
			case rec.async && !rec.waiting && !rec.held && !rec.abandoned:
				if s := c.out.drop(rec); s != on {
					if on != nil {
						c.maybeRetireLocked(on)
					}
					on = s
				}
				if rec.cb != nil {
					c.calls.push(rec.cb, rec.seq, nil)
				}
				c.recycleLocked(rec)
				freed++
			case rec.async:
				c.finishLocked(rec, nil)
				freed++
			default:
				c.completeLocked(rec, nil) // a Report's waiter may go on at once
			}
		}
		if seq == last {
			break
		}
	}
	c.out.pending.skipFinished()
	if on != nil {
		c.maybeRetireLocked(on)
	}
	c.life.closingDrained(c.out.len())
	c.window.releaseN(freed)
}

// unlock releases c.mu, then calls the done of every report made by Go that
// finished while it was held, in the order they finished.
func (c *Client) unlock() {
	list := c.calls.take(nil)
	c.mu.Unlock()
	callDone(list)
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
	c.life.to(stateClosing)
	c.life.closingDrained(c.out.len())
	c.mu.Unlock()
	c.wakeManager()

	t := time.NewTimer(closeWait)
	select {
	case <-c.life.drained:
	case <-t.C:
	}
	t.Stop()

	c.mu.Lock()
	c.life.to(stateStopped)
	live := slices.Clone(c.conns.live)
	c.mu.Unlock()
	c.cancel() // aborts a connection attempt in progress
	close(c.stop)
	for _, s := range live {
		s.fail(ErrClosed)
	}
	c.wg.Wait()

	c.mu.Lock()
	left := c.out.takeAll()
	for _, r := range left {
		c.completeLocked(r, ErrClosed)
	}
	c.out.recycle(left)
	c.unlock()
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	sent, acked := c.sent, c.acked
	c.mu.Unlock()
	return Stats{
		Sent:         sent,
		Acked:        acked,
		Nacked:       c.stats.nacked.Load(),
		Resent:       c.stats.resent.Load(),
		Reconnects:   c.stats.reconnects.Load(),
		Goaways:      c.stats.goaways.Load(),
		DialFailures: c.stats.dialFailures.Load(),
		TLSResumed:   c.stats.resumed.Load(),
		InFlight:     c.window.inFlight(),
	}
}

// Welcome returns the WELCOME of the current connection (of the last one while
// disconnected).
func (c *Client) Welcome() protocol.Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conns.welcome
}
