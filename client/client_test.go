package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testOptions are options for a client of srv with fast backoff.
func testOptions(srv *fakeServer, id string) Options {
	return Options{Addr: srv.addr(), ClientID: id, Token: srv.token, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, DialTimeout: 2 * time.Second}
}

func dial(t *testing.T, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// reportAll runs n Reports from g goroutines and returns every seq, failing the
// test on any error.
func reportAll(t *testing.T, c *Client, g, n int, payload func(i int) []byte) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var seqs []uint64
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, g)
	for range g {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := []byte(fmt.Sprintf("report-%d", i))
				if payload != nil {
					p = payload(i)
				}
				seq, err := c.Report(ctx, p)
				if err != nil {
					errs <- fmt.Errorf("report %d: %w", i, err)
					return
				}
				mu.Lock()
				seqs = append(seqs, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(seqs)
	if len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
		t.Fatalf("Report returned a seq twice")
	}
	return seqs
}

// eventLog records events for assertions.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

func (l *eventLog) find(k EventKind) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.ev {
		if e.Kind == k {
			return e, true
		}
	}
	return Event{}, false
}

// wait waits for the first event of kind k: events are emitted after the state
// change they report, so a test may see the effect before the event.
func (l *eventLog) wait(t *testing.T, k EventKind) Event {
	t.Helper()
	var e Event
	testutil.Eventually(t, 5*time.Second, func() bool {
		var ok bool
		e, ok = l.find(k)
		return ok
	}, "a %s event", k)
	return e
}

func TestHandshakeOK(t *testing.T) {
	srv := newFakeServer(t)
	srv.token = "s3cret"
	srv.hbMS = 1234
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	w := c.Welcome()
	if w.ServerID != "fake" || w.ConnID != 1 || w.HeartbeatIntervalMS != 1234 {
		t.Fatalf("Welcome() = %+v", w)
	}
	if srv.conn(0).clientID != "agent-1" {
		t.Fatalf("server saw client id %q", srv.conn(0).clientID)
	}
	seq, err := c.Report(context.Background(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.conn(0).receivedSeqs(); !slices.Equal(got, []uint64{seq}) {
		t.Fatalf("server received %v, want [%d]", got, seq)
	}
	if st := c.Stats(); st.Sent != 1 || st.Acked != 1 || st.InFlight != 0 || st.Reconnects != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHandshakeRefusedNotRetried(t *testing.T) {
	srv := newFakeServer(t)
	srv.token = "right"
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.Token = "wrong"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with a wrong token")
	}
	var ep *protocol.ErrorPayload
	if !errors.As(err, &ep) || ep.Code != protocol.CodeUnauthorized {
		t.Fatalf("Dial error = %v (%T), want *protocol.ErrorPayload unauthorized", err, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Dial waited for its context instead of returning the refusal")
	}
	srv.mu.Lock()
	hellos := srv.hellos
	srv.mu.Unlock()
	if hellos != 1 {
		t.Fatalf("server saw %d HELLOs, want exactly 1 (a refusal is not retried)", hellos)
	}
}

func TestHandshakeTransientRefusalRetried(t *testing.T) {
	srv := newFakeServer(t)
	var n atomic.Int32
	srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if n.Add(1) <= 2 {
			return &protocol.ErrorPayload{Code: protocol.CodeTooManyConns, Message: "full"}
		}
		return nil
	}
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	if st := c.Stats(); st.DialFailures != 2 {
		t.Fatalf("DialFailures = %d, want 2", st.DialFailures)
	}
}

func TestDialGivesUpWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Options{Addr: addr, ClientID: "a", MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want one wrapping context.DeadlineExceeded", err)
	}
}

func TestPipelineWindow(t *testing.T) {
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) { fc.ackLater(seq, 5*time.Millisecond) }
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	c := dial(t, opts)
	seqs := reportAll(t, c, 64, 640, nil)
	if len(seqs) != 640 {
		t.Fatalf("%d reports", len(seqs))
	}
	srv.mu.Lock()
	maxOut := srv.maxOutstanding
	srv.mu.Unlock()
	if maxOut > 8 {
		t.Fatalf("server saw %d reports unacked at once, window is 8", maxOut)
	}
	if maxOut < 8 {
		t.Fatalf("server saw at most %d reports unacked at once: the window of 8 was not used", maxOut)
	}
	// Seqs go out in increasing order on the wire and are never reused.
	got := srv.conn(0).receivedSeqs()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Fatal("seqs on the wire are not strictly increasing")
	}
	if !slices.Equal(got, seqs) {
		t.Fatal("the server did not receive exactly the seqs Report returned")
	}
	if st := c.Stats(); st.Sent != 640 || st.Acked != 640 || st.Resent != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPayloadCopied(t *testing.T) {
	srv := newFakeServer(t)
	got := srv.recordPayloads(0)
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	buf := []byte("first")
	seq1, err := c.Report(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	seq2, err := c.Report(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if seq2 <= seq1 {
		t.Fatalf("seq %d after %d", seq2, seq1)
	}
	if got.of(seq1) != "first" || got.of(seq2) != "XXXXX" {
		t.Fatalf("server got %q, %q", got.of(seq1), got.of(seq2))
	}
}

func TestReconnectResendsOnlyUnacked(t *testing.T) {
	srv := newFakeServer(t)
	// 30..35 are received, never acked; the 36th kills the connection.
	var unackedAtCrash []uint64
	srv.crashWithUnacked(30, 36, &unackedAtCrash)
	srv.start()
	ev := &eventLog{}
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	opts.OnEvent = ev.add
	c := dial(t, opts)
	seqs := reportAll(t, c, 16, 200, nil)

	if len(unackedAtCrash) != 7 {
		t.Fatalf("unacked at the crash: %v, want 7", unackedAtCrash)
	}
	srv.checkResentOnce(t, seqs, unackedAtCrash)
	st := c.Stats()
	if st.Reconnects != 1 || st.Acked != 200 || st.Resent < uint64(len(unackedAtCrash)) || st.Resent > 8 {
		t.Fatalf("stats %+v", st)
	}
	if e := ev.wait(t, EventDisconnected); e.Err == nil {
		t.Fatalf("no disconnected event with an error: %+v", ev.ev)
	}
	if e := ev.wait(t, EventResend); e.N != int(st.Resent) {
		t.Fatalf("resend event %+v, stats %+v", e, st)
	}
}

func TestNackRetryableIsRetried(t *testing.T) {
	srv := newFakeServer(t)
	var nacks atomic.Int32
	srv.onReport = func(fc *fakeConn, seq uint64, p []byte) {
		if string(p) == "flaky" && nacks.Add(1) <= 2 {
			fc.nack(seq, protocol.Nack{Code: protocol.CodeSpoolWrite, Message: "disk hiccup", Retryable: true})
			return
		}
		fc.ack(seq)
	}
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	seq, err := c.Report(context.Background(), []byte("flaky"))
	if err != nil {
		t.Fatalf("Report after retryable NACKs: %v", err)
	}
	on, acked := srv.seen(seq)
	if recv := len(on); recv != 3 || acked != 1 {
		t.Fatalf("server received seq %d times, acked %d; want 3 and 1", recv, acked)
	}
	if st := c.Stats(); st.Nacked != 2 || st.Resent != 2 || st.Acked != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNackNonRetryableReturned(t *testing.T) {
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, p []byte) {
		if string(p) == "bad" {
			fc.nack(seq, protocol.Nack{Code: protocol.CodeBadPayload, Message: "not json"})
			return
		}
		fc.ack(seq)
	}
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	seq, err := c.Report(context.Background(), []byte("bad"))
	var ne *NackError
	if !errors.As(err, &ne) || ne.Seq != seq || ne.Code != protocol.CodeBadPayload || ne.Retryable {
		t.Fatalf("Report error = %v (%T), want *NackError bad_payload for seq %d", err, err, seq)
	}
	if _, err := c.Report(context.Background(), []byte("good")); err != nil {
		t.Fatalf("a later report failed: %v", err)
	}
	if on, _ := srv.seen(seq); len(on) != 1 {
		t.Fatalf("non-retryable report sent %d times", len(on))
	}
	if st := c.Stats(); st.InFlight != 0 || st.Resent != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoawayHandoff(t *testing.T) {
	srv := newFakeServer(t)
	srv.goawayAfter(40)
	srv.start()
	ev := &eventLog{}
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	opts.OnEvent = ev.add
	c := dial(t, opts)
	seqs := reportAll(t, c, 16, 300, nil)

	old, next := srv.conn(0), srv.conn(1)
	// The old connection is closed by the client once its reports are acked.
	select {
	case <-old.eof:
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not close the old connection")
	}
	old.mu.Lock()
	unackedAtEOF, endErr := old.unackedAtEOF, old.endErr
	old.mu.Unlock()
	if unackedAtEOF != 0 {
		t.Fatalf("old connection closed with %d reports unacked", unackedAtEOF)
	}
	if !errors.Is(endErr, io.EOF) {
		t.Fatalf("old connection ended with %v, want a clean EOF", endErr)
	}
	srv.checkOnceEach(t, seqs)
	a, b := old.receivedSeqs(), next.receivedSeqs()
	if len(a) < 40 || len(b) == 0 || len(a)+len(b) != 300 {
		t.Fatalf("old got %d reports, new %d", len(a), len(b))
	}
	if slices.Max(a) >= slices.Min(b) {
		t.Fatalf("a report older than the switch went to the new connection, or a newer one to the old: old max %d, new min %d", slices.Max(a), slices.Min(b))
	}
	if srv.numConns() != 2 {
		t.Fatalf("%d connections, want 2", srv.numConns())
	}
	st := c.Stats()
	if st.Goaways != 1 || st.Reconnects != 1 || st.Resent != 0 || st.Acked != 300 {
		t.Fatalf("stats %+v", st)
	}
	if e := ev.wait(t, EventGoaway); e.Reason != "upgrade" {
		t.Fatalf("no goaway event: %+v", ev.ev)
	}
	if e := ev.wait(t, EventDisconnected); e.Err != nil {
		t.Fatalf("the retired connection should end without an error: %+v", e)
	}
}

func TestGoawayWithoutSuccessor(t *testing.T) {
	// The server says GOAWAY but nothing accepts new connections until the old one
	// is gone (a plain shutdown, then a restart): the client keeps using the old
	// connection, then reconnects with backoff once it ends.
	srv := newFakeServer(t)
	var oldDone atomic.Bool
	refused := make(chan struct{}, 100)
	srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if fc.idx > 0 && !oldDone.Load() {
			refused <- struct{}{}
			return &protocol.ErrorPayload{Code: protocol.CodeShutdown, Message: "shutting down"}
		}
		return nil
	}
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx > 0 {
			fc.ack(seq)
			return
		}
		n := len(fc.receivedSeqs())
		switch {
		case n == 10:
			fc.ack(seq)
			fc.goaway(time.Second)
		case n < 30:
			fc.ack(seq)
		case n == 30:
			select { // the handoff attempt must have been refused by now
			case <-refused:
			case <-time.After(5 * time.Second):
				t.Error("no handoff attempt after GOAWAY")
			}
			oldDone.Store(true)
			fc.queueJSON(protocol.TypeError, &protocol.ErrorPayload{Code: protocol.CodeDrainTimeout, Message: "bye"})
			fc.flush()
			fc.kill()
		}
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 4
	c := dial(t, opts)
	seqs := reportAll(t, c, 4, 100, nil)
	// The old connection ends with a reset (kill), which can destroy ACKs it sent
	// that the client had not read yet: the client resends those on the new
	// connection, so each is ACKed once on each. Any other second ACK is a resend
	// of a report the client had seen ACKed.
	srv.mu.Lock()
	resentAfterReset := 0
	for _, seq := range seqs {
		switch n := srv.acked[seq]; {
		case n == 1:
		case n == 2 && slices.Equal(srv.recv[seq], []int{0, 1}):
			resentAfterReset++
		default:
			t.Errorf("seq %d acked %d times, received on connections %v", seq, n, srv.recv[seq])
		}
	}
	srv.mu.Unlock()
	if resentAfterReset > opts.MaxInFlight {
		t.Errorf("%d reports ACKed on both connections: more than the %d in flight when the old one was reset", resentAfterReset, opts.MaxInFlight)
	}
	if got := len(srv.conn(0).receivedSeqs()); got != 30 {
		t.Fatalf("old connection received %d reports, want 30 (it stays in use after a failed handoff)", got)
	}
	if st := c.Stats(); st.Goaways != 1 || st.DialFailures < 1 || st.Acked != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoawayRightAfterWelcomeDoesNotSpin(t *testing.T) {
	// A server that says GOAWAY to every connection at once (e.g. a draining server
	// that still accepts): the client must back off instead of reconnecting in a
	// tight loop, and reports still get through.
	srv := newFakeServer(t)
	srv.afterWelcome = func(fc *fakeConn) { fc.queueGoaway(10 * time.Second) }
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 100*time.Millisecond
	c := dial(t, opts)
	start := time.Now()
	for range 20 {
		if _, err := c.Report(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for time.Since(start) < 500*time.Millisecond {
		time.Sleep(10 * time.Millisecond) // let it run: this test measures a rate
	}
	if n := srv.numConns(); n > 40 {
		t.Fatalf("%d connections in 500ms: reconnecting in a tight loop", n)
	}
	t.Logf("%d connections in 500ms", srv.numConns())
	if n := srv.numConns(); n < 3 {
		t.Fatalf("%d connections: GOAWAY was not followed", n)
	}
}

func TestHeartbeatPingWhenIdle(t *testing.T) {
	srv := newFakeServer(t)
	srv.hbMS = 250 // generous: a starved test machine must not look like a dead server
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	testutil.Eventually(t, 5*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.pings >= 3
	}, "PINGs from an idle client")
	if st := c.Stats(); st.Reconnects != 0 {
		t.Fatalf("an idle client answered by PONGs reconnected: %+v", st)
	}
}

func TestDeadServerDetected(t *testing.T) {
	srv := newFakeServer(t)
	srv.hbMS = 50
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx == 0 {
			fc.silent.Store(true) // hang: no ACK, no PONG, no reading
			return
		}
		fc.ack(seq)
	}
	srv.start()
	ev := &eventLog{}
	opts := testOptions(srv, "agent-1")
	opts.OnEvent = ev.add
	// The timeout runs from the last bytes received, the WELCOME at the latest, so
	// the clock starts before the dial: started after it, a loaded machine's delay
	// between the WELCOME and the report is taken off the elapsed time.
	start := time.Now()
	c := dial(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seq, err := c.Report(ctx, []byte("x"))
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("acked %v after the dial, before the 3×50ms heartbeat timeout could pass", el)
	}
	if recv, _ := srv.seen(seq); !slices.Equal(recv, []int{0, 1}) {
		t.Fatalf("seq received on connections %v, want [0 1]", recv)
	}
	if e := ev.wait(t, EventDisconnected); !errors.Is(e.Err, errHeartbeatTimeout) {
		t.Fatalf("disconnect event %+v, want heartbeat timeout", e)
	}
	if st := c.Stats(); st.Reconnects != 1 || st.Resent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestServerErrorReconnects(t *testing.T) {
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx == 0 {
			fc.queueJSON(protocol.TypeError, &protocol.ErrorPayload{Code: protocol.CodeHeartbeatTimeout, Message: "too quiet"})
			fc.flush()
			fc.kill()
			return
		}
		fc.ack(seq)
	}
	srv.start()
	ev := &eventLog{}
	opts := testOptions(srv, "agent-1")
	opts.OnEvent = ev.add
	c := dial(t, opts)
	if _, err := c.Report(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	e := ev.wait(t, EventDisconnected)
	var ep *protocol.ErrorPayload
	if !errors.As(e.Err, &ep) || ep.Code != protocol.CodeHeartbeatTimeout {
		t.Fatalf("disconnect event %+v, want the server's ERROR", e)
	}
}

func TestReconnectRefusedForGoodFailsReports(t *testing.T) {
	srv := newFakeServer(t)
	srv.dropThenRefuse(protocol.CodeReplaced) // retryable: the client reconnects, and is refused
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Report(ctx, []byte("x"))
	var ep *protocol.ErrorPayload
	if !errors.As(err, &ep) || ep.Code != protocol.CodeUnauthorized {
		t.Fatalf("Report error = %v, want the unauthorized refusal", err)
	}
	if _, err := c.Report(ctx, []byte("y")); !errors.As(err, &ep) {
		t.Fatalf("later Report error = %v, want the refusal", err)
	}
	if n := srv.numConns(); n != 2 {
		t.Fatalf("%d connections: a final refusal must not be retried", n)
	}
}

func TestReportContextCancelled(t *testing.T) {
	srv := newFakeServer(t)
	release := make(chan struct{})
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		fc.srv.wg.Add(1)
		go func() { // ack once the test says so
			defer fc.srv.wg.Done()
			select {
			case <-release:
				fc.ack(seq)
				fc.flush()
			case <-fc.eof:
			}
		}()
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 1
	c := dial(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Report(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Report error = %v, want deadline exceeded", err)
	}
	// The abandoned report still holds the window until the server answers.
	if st := c.Stats(); st.InFlight != 1 {
		t.Fatalf("in flight %d, want 1", st.InFlight)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if _, err := c.Report(ctx2, []byte("y")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Report with a full window: %v, want deadline exceeded", err)
	}
	close(release)
	testutil.Eventually(t, 2*time.Second, func() bool { return c.Stats().InFlight == 0 }, "the window to free up")
	if _, err := c.Report(context.Background(), []byte("z")); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) { fc.ackLater(seq, 50*time.Millisecond) }
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := c.Report(context.Background(), []byte("x"))
			errs <- err
		}()
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return len(srv.conn(0).receivedSeqs()) == 4 }, "4 reports at the server")
	c.Close()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("in-flight report failed across Close: %v", err)
		}
	}
	if _, err := c.Report(context.Background(), []byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Report after Close: %v, want ErrClosed", err)
	}
}

func TestCloseGivesUpAfterTimeout(t *testing.T) {
	old := closeWait
	closeWait = 50 * time.Millisecond
	defer func() { closeWait = old }()
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {} // never acks
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	errs := make(chan error, 1)
	go func() {
		_, err := c.Report(context.Background(), []byte("x"))
		errs <- err
	}()
	testutil.Eventually(t, 2*time.Second, func() bool { return len(srv.conn(0).receivedSeqs()) == 1 }, "a report at the server")
	c.Close()
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("unacked report after Close: %v, want ErrClosed", err)
	}
}

func TestReportsQueuedWhileDisconnected(t *testing.T) {
	// Reports made while the server is unreachable wait and go out, in order, when
	// it comes back.
	srv := newFakeServer(t)
	var down atomic.Bool
	srv.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if down.Load() {
			return &protocol.ErrorPayload{Code: protocol.CodeTooManyConns, Message: "busy"}
		}
		return nil
	}
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx == 0 {
			down.Store(true)
			fc.kill()
			return
		}
		fc.ack(seq)
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	c := dial(t, opts)
	done := make(chan []uint64)
	go func() { done <- reportAll(t, c, 8, 50, nil) }()
	testutil.Eventually(t, 5*time.Second, func() bool { return c.Stats().DialFailures >= 3 }, "failed reconnects")
	down.Store(false)
	var seqs []uint64
	select {
	case seqs = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reports did not complete after the server came back")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, s := range seqs {
		if srv.acked[s] != 1 {
			t.Fatalf("seq %d acked %d times", s, srv.acked[s])
		}
	}
}

func TestTooLarge(t *testing.T) {
	srv := newFakeServer(t)
	srv.maxFrame = 100
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	if _, err := c.Report(context.Background(), make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Report of 101 bytes: %v, want ErrTooLarge", err)
	}
	if _, err := c.Report(context.Background(), make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := range 70 {
		for range 100 {
			d := backoff(n, 100*time.Millisecond, 10*time.Second)
			ceil := 10 * time.Second
			if n < 7 { // 100ms·2⁷ > 10s
				ceil = 100 * time.Millisecond << n
			}
			if d < 0 || d >= ceil {
				t.Fatalf("backoff(%d) = %v, want [0, %v)", n, d, ceil)
			}
		}
	}
}

func BenchmarkReport(b *testing.B) {
	srv := newFakeServer(b)
	srv.light = true
	srv.start()
	c, err := Dial(context.Background(), Options{Addr: srv.addr(), ClientID: "bench", MaxInFlight: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 256)
	b.SetParallelism(32) // 32 × GOMAXPROCS goroutines: enough to keep the window full
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := c.Report(ctx, payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
}

// BenchmarkReportSerial is one report at a time: the round-trip latency floor.
func BenchmarkReportSerial(b *testing.B) {
	srv := newFakeServer(b)
	srv.light = true
	srv.start()
	c, err := Dial(context.Background(), Options{Addr: srv.addr(), ClientID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Report(context.Background(), payload); err != nil {
			b.Fatal(err)
		}
	}
}
