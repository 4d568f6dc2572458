package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// These tests pin the client-facing rules of PROTOCOL.md 5, 6.2, 6.4 and 6.5:
// GOAWAY migration, the PING rule, the retry table, retry_after_ms and WELCOME
// max_in_flight.

// noBackoff returns options whose reconnect backoff is an hour: a test that still
// sees the next connection proves that no backoff was applied.
func noBackoff(srv *fakeServer, id string) Options {
	o := testOptions(srv, id)
	o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour
	return o
}

func sendGoaway(fc *fakeConn, g protocol.Goaway) {
	fc.queueJSON(protocol.TypeGoaway, &g)
	fc.flush()
}

// waitEOF waits until the client has closed fc (or the server did).
func waitEOF(t *testing.T, fc *fakeConn, what string) {
	t.Helper()
	select {
	case <-fc.eof:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: connection %d still open", what, fc.idx)
	}
}

func TestGoawayDeadlineZeroMeansNow(t *testing.T) {
	// deadline_ms 0: the deadline has passed. The client dials at once (no backoff:
	// an hour here) and, since the server may close at any moment, does not wait
	// for the old connection's reports: this server never answers them and never
	// closes, so they complete only if the client gives the old connection up at
	// the deadline (plus its grace) and resends them. A client that took 0 as "no
	// deadline" would wait forever.
	defer func(g time.Duration) { goawayGrace = g }(goawayGrace)
	goawayGrace = 50 * time.Millisecond
	srv := newFakeServer(t)
	var held atomic.Int32
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx > 0 {
			fc.ack(seq)
			return
		}
		if held.Add(1) == 4 { // the window is full: GOAWAY, answer nothing more
			sendGoaway(fc, protocol.Goaway{Reason: "upgrade", DeadlineMS: 0})
		}
	}
	srv.start()
	opts := noBackoff(srv, "agent-1")
	opts.MaxInFlight = 4
	c := dial(t, opts)
	seqs := reportAll(t, c, 4, 20, nil)
	old := srv.conn(0)
	waitEOF(t, old, "old connection past its deadline")
	if got := old.receivedSeqs(); len(got) != 4 {
		t.Fatalf("old connection received %d reports, want the 4 sent before GOAWAY", len(got))
	}
	for _, seq := range old.receivedSeqs() {
		if on, acks := srv.seen(seq); !slices.Equal(on, []int{0, 1}) || acks != 1 {
			t.Fatalf("held seq %d seen on %v, acked %d times: want resent on the new connection and acked once", seq, on, acks)
		}
	}
	for _, seq := range seqs {
		if _, acks := srv.seen(seq); acks != 1 {
			t.Fatalf("seq %d acked %d times", seq, acks)
		}
	}
	if n := srv.numConns(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestGoawayBeforeAnyAckMigratesAfterReconnectAfter(t *testing.T) {
	// A GOAWAY right after WELCOME, before any ACK or PONG: the client dials after
	// reconnect_after_ms, with no reconnect backoff (an hour here), and the
	// migration completes before the deadline, when this server cuts the old
	// connection with ERROR drain_timeout.
	const after = 200 * time.Millisecond
	const deadline = 10 * time.Second
	srv := newFakeServer(t)
	var goawayAt time.Time
	var cut atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	srv.afterWelcome = func(fc *fakeConn) {
		if fc.idx > 0 {
			return
		}
		goawayAt = time.Now()
		fc.queueJSON(protocol.TypeGoaway, &protocol.Goaway{Reason: "upgrade", DeadlineMS: deadline.Milliseconds(), ReconnectAfterMS: after.Milliseconds()})
		wg.Go(func() {
			select {
			case <-time.After(deadline):
				cut.Store(true)
				fc.errorClose(&protocol.ErrorPayload{Code: protocol.CodeDrainTimeout, Message: "drain deadline passed"})
			case <-fc.eof:
			case <-srv.done:
			}
		})
	}
	srv.start()
	c := dial(t, noBackoff(srv, "agent-1"))
	next := srv.conn(1)
	if cut.Load() {
		t.Fatal("the old connection was cut at its deadline before the client migrated")
	}
	if d := next.accepted.Sub(goawayAt); d < after {
		t.Fatalf("new connection %v after GOAWAY, before reconnect_after_ms %v", d, after)
	}
	if _, err := c.Report(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := next.receivedSeqs(); len(got) != 1 {
		t.Fatalf("new connection received %v, want the report", got)
	}
	waitEOF(t, srv.conn(0), "old connection with nothing in flight")
	if cut.Load() {
		t.Fatal("the old connection was cut at its deadline, not retired by the client")
	}
}

func TestGoawayFailedDialsRetriedBeforeDeadline(t *testing.T) {
	// During a migration a failed dial is retried with a backoff capped so that the
	// next attempt starts before the deadline: with an hour of backoff, only that
	// cap gets the client to its third connection before the old one is cut.
	const deadline = 2 * time.Second
	srv := newFakeServer(t)
	var cut atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if fc.idx == 1 {
			return &protocol.ErrorPayload{Code: protocol.CodeTooManyConns, Message: "full"}
		}
		return nil
	}
	srv.afterWelcome = func(fc *fakeConn) {
		if fc.idx > 0 {
			return
		}
		fc.queueJSON(protocol.TypeGoaway, &protocol.Goaway{Reason: "upgrade", DeadlineMS: deadline.Milliseconds()})
		wg.Go(func() {
			select {
			case <-time.After(deadline):
				cut.Store(true)
				fc.errorClose(&protocol.ErrorPayload{Code: protocol.CodeDrainTimeout, Message: "drain deadline passed"})
			case <-fc.eof:
			case <-srv.done:
			}
		})
	}
	srv.start()
	c := dial(t, noBackoff(srv, "agent-1"))
	srv.conn(2)
	if cut.Load() {
		t.Fatal("the old connection was cut at its deadline before the client migrated")
	}
	if _, err := c.Report(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.DialFailures != 1 {
		t.Fatalf("stats %+v, want one failed dial", st)
	}
}

func TestGoawayShutdownSendsNoNewReportsOnOld(t *testing.T) {
	// Reason shutdown: no new report goes to the old connection; its reports in
	// flight are still answered there (after the GOAWAY) and are not resent; new
	// reports go to the next connection.
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx > 0 {
			fc.ack(seq)
			return
		}
		if got := fc.receivedSeqs(); len(got) == 4 { // the window is full
			fc.queueJSON(protocol.TypeGoaway, &protocol.Goaway{Reason: "shutdown", DeadlineMS: 10_000})
			for _, s := range got {
				fc.ack(s) // after the GOAWAY, in the same write
			}
		}
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 4
	c := dial(t, opts)
	seqs := reportAll(t, c, 4, 100, nil)
	srv.checkOnceEach(t, seqs)
	if got := srv.conn(0).receivedSeqs(); len(got) != 4 {
		t.Fatalf("old connection received %d reports, want only the 4 sent before GOAWAY shutdown", len(got))
	}
	waitEOF(t, srv.conn(0), "old connection after shutdown")
	if st := c.Stats(); st.Resent != 0 || st.Acked != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPingWhenStreamingWhileAcksStall(t *testing.T) {
	// The client streams reports but the server answers none for a while: the
	// client has sent recently but received nothing, so it must PING; the PONGs
	// prove the server alive and the connection is kept (3 silent intervals would
	// have ended it).
	srv := newFakeServer(t)
	srv.hbMS = 200
	var stall atomic.Bool
	stall.Store(true)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if !stall.Load() {
			fc.ack(seq)
		}
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 100_000
	c := dial(t, opts)
	l := newDoneLog(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				sent.Add(1)
				if err := c.Go([]byte("r"), l.done); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	testutil.Eventually(t, 10*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.pings >= 4
	}, "PINGs from a client streaming to a silent server")
	close(stop)
	wg.Wait()
	stall.Store(false)
	fc := srv.conn(0)
	for _, seq := range fc.unackedSeqs() {
		fc.ack(seq)
	}
	fc.flush()
	testutil.Eventually(t, 10*time.Second, func() bool { return c.Stats().Acked == uint64(sent.Load()) }, "every report acked")
	if st := c.Stats(); st.Reconnects != 0 || srv.numConns() != 1 {
		t.Fatalf("the client gave up a connection whose server answered PINGs: %+v", st)
	}
}

// retryCase runs one ERROR code through a client: on an established connection
// (the answer to the first report) or in answer to the HELLO of a reconnect.
func retryCase(t *testing.T, code protocol.Code, atHello bool) (err error, conns int) {
	srv := newFakeServer(t)
	srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if atHello && fc.idx == 1 {
			return &protocol.ErrorPayload{Code: code, Message: "test"}
		}
		return nil
	}
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		switch {
		case fc.idx > 0:
			fc.ack(seq)
		case atHello: // a retryable end first, so that the client reconnects
			fc.errorClose(&protocol.ErrorPayload{Code: protocol.CodeReplaced, Message: "test"})
		default:
			fc.errorClose(&protocol.ErrorPayload{Code: code, Message: "test"})
		}
	}
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Report(ctx, []byte("x"))
	c.Close()
	return err, srv.numConns()
}

func TestErrorRetryFollowsTheTable(t *testing.T) {
	codes := append(protocol.Codes(), "no_such_code") // an unknown code is final
	slices.Sort(codes)
	for _, code := range codes {
		for _, atHello := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hello=%v", code, atHello), func(t *testing.T) {
				err, conns := retryCase(t, code, atHello)
				want := 2 // the connection that ended, then the one that worked
				if atHello {
					want = 3
				}
				if code.Retryable() {
					if err != nil || conns != want {
						t.Fatalf("retryable %s: Report = %v over %d connections, want success over %d", code, err, conns, want)
					}
					return
				}
				var ep *ServerError
				if !errors.As(err, &ep) || ep.Code != code {
					t.Fatalf("final %s: Report = %v, want the *ServerError with that code", code, err)
				}
				if conns != want-1 {
					t.Fatalf("final %s: %d connections, want %d (no reconnect after it)", code, conns, want-1)
				}
			})
		}
	}
}

func TestBusyRetryAfterDelaysTheNextDial(t *testing.T) {
	const wait = 300 * time.Millisecond
	busy := &protocol.ErrorPayload{Code: protocol.CodeBusy, Message: "busy", RetryAfterMS: wait.Milliseconds()}
	t.Run("established", func(t *testing.T) {
		srv := newFakeServer(t)
		var sentAt atomic.Int64
		srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
			if fc.idx > 0 {
				fc.ack(seq)
				return
			}
			sentAt.Store(time.Now().UnixNano())
			fc.errorClose(busy)
		}
		srv.start()
		c := dial(t, testOptions(srv, "agent-1"))
		if _, err := c.Report(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if d := srv.conn(1).accepted.Sub(time.Unix(0, sentAt.Load())); d < wait {
			t.Fatalf("next dial %v after ERROR busy, want at least retry_after_ms %v", d, wait)
		}
	})
	t.Run("hello", func(t *testing.T) {
		srv := newFakeServer(t)
		var refusedAt atomic.Int64
		srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
			if fc.idx == 0 {
				refusedAt.Store(time.Now().UnixNano())
				return busy
			}
			return nil
		}
		srv.start()
		dial(t, testOptions(srv, "agent-1"))
		if d := srv.conn(1).accepted.Sub(time.Unix(0, refusedAt.Load())); d < wait {
			t.Fatalf("next dial %v after ERROR busy, want at least retry_after_ms %v", d, wait)
		}
	})
}

func TestServerMaxInFlightPerConnection(t *testing.T) {
	// WELCOME max_in_flight 3 below the client's window of 32: no connection ever
	// holds more than 3 unanswered reports, also across a GOAWAY handoff, when two
	// connections live at once.
	for _, handoff := range []bool{false, true} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			srv := newFakeServer(t)
			srv.maxInFlight = 3
			if handoff {
				srv.goawayAfter(40)
			} else {
				srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) { fc.ackLater(seq, time.Millisecond) }
			}
			srv.start()
			opts := testOptions(srv, "agent-1")
			opts.MaxInFlight = 32
			c := dial(t, opts)
			seqs := reportAll(t, c, 16, 300, nil)
			srv.checkOnceEach(t, seqs)
			for i := range srv.numConns() {
				fc := srv.conn(i)
				fc.mu.Lock()
				m := fc.maxUnacked
				fc.mu.Unlock()
				if m > 3 {
					t.Fatalf("connection %d had %d reports unanswered, the server allows 3", i, m)
				}
				if m == 0 {
					t.Fatalf("connection %d received nothing", i)
				}
			}
			if handoff && srv.numConns() != 2 {
				t.Fatalf("%d connections, want 2", srv.numConns())
			}
		})
	}
}
