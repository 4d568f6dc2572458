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
)

// doneLog records the done calls of reports made by Go.
type doneLog struct {
	mu    sync.Mutex
	calls map[uint64]int   // seq → done calls
	errs  map[uint64]error // seq → the last outcome
	n     int
	all   chan struct{} // closed when n reaches want
	want  int
}

func newDoneLog(want int) *doneLog {
	return &doneLog{calls: map[uint64]int{}, errs: map[uint64]error{}, all: make(chan struct{}), want: want}
}

func (l *doneLog) done(seq uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[seq]++
	l.errs[seq] = err
	l.n++
	if l.n == l.want {
		close(l.all)
	}
}

func (l *doneLog) wait(t *testing.T) {
	t.Helper()
	select {
	case <-l.all:
	case <-time.After(20 * time.Second):
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%d of %d done calls after 20s", l.n, l.want)
	}
}

// check verifies that done was called exactly once per report, with distinct seqs
// and no error, and returns the seqs in order. Call it after Close: by then every
// done has been called, so an extra call would show.
func (l *doneLog) check(t *testing.T) []uint64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n != l.want || len(l.calls) != l.want {
		t.Fatalf("%d done calls for %d distinct seqs, want %d each", l.n, len(l.calls), l.want)
	}
	seqs := make([]uint64, 0, len(l.calls))
	for seq, n := range l.calls {
		if n != 1 {
			t.Fatalf("done called %d times for seq %d", n, seq)
		}
		if err := l.errs[seq]; err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs
}

// goAll makes n reports with Go from g goroutines and waits for every done.
func goAll(t *testing.T, c *Client, g, n int) *doneLog {
	t.Helper()
	l := newDoneLog(n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for range g {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := c.Go(fmt.Appendf(nil, "report-%d", i), l.done); err != nil {
					errs <- fmt.Errorf("Go %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l.wait(t)
	return l
}

func TestGoDoneOncePerReport(t *testing.T) {
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) { fc.ackLater(seq, 2*time.Millisecond) }
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	c := dial(t, opts)
	l := goAll(t, c, 4, 600)
	c.Close()
	seqs := l.check(t)
	// The seqs passed to done are exactly those on the wire, which are strictly
	// increasing in sending order.
	got := srv.conn(0).receivedSeqs()
	if !slices.IsSorted(got) || !slices.Equal(got, seqs) {
		t.Fatal("the server did not receive exactly the seqs passed to done, in increasing order")
	}
	srv.mu.Lock()
	maxOut := srv.maxOutstanding
	srv.mu.Unlock()
	if maxOut != 8 {
		t.Fatalf("server saw at most %d reports unacked at once, want the window of 8", maxOut)
	}
	if st := c.Stats(); st.Sent != 600 || st.Acked != 600 || st.Resent != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoPayloadCopied(t *testing.T) {
	srv := newFakeServer(t)
	got := srv.recordPayloads(10 * time.Millisecond)
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	l := newDoneLog(2)
	buf := []byte("first")
	if err := c.Go(buf, l.done); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXX")
	if err := c.Go(buf, l.done); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	seqs := l.check(t)
	if got.of(seqs[0]) != "first" || got.of(seqs[1]) != "XXXXX" {
		t.Fatalf("server got %q, %q", got.of(seqs[0]), got.of(seqs[1]))
	}
}

func TestGoResendOnReconnect(t *testing.T) {
	srv := newFakeServer(t)
	var unackedAtCrash []uint64
	srv.crashWithUnacked(30, 36, &unackedAtCrash)
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	c := dial(t, opts)
	l := goAll(t, c, 3, 200)
	c.Close()
	seqs := l.check(t)
	if len(unackedAtCrash) != 7 {
		t.Fatalf("unacked at the crash: %v, want 7", unackedAtCrash)
	}
	srv.checkResentOnce(t, seqs, unackedAtCrash)
	if st := c.Stats(); st.Reconnects != 1 || st.Acked != 200 || st.Resent < 7 || st.Resent > 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoGoawayHandoff(t *testing.T) {
	srv := newFakeServer(t)
	srv.goawayAfter(40)
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	c := dial(t, opts)
	l := goAll(t, c, 2, 300)
	c.Close()
	seqs := l.check(t)
	srv.checkOnceEach(t, seqs)
	if st := c.Stats(); st.Goaways != 1 || st.Reconnects != 1 || st.Resent != 0 || st.Acked != 300 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGoFromDone chains reports: each done makes the next report with Go, with a
// window of one. The slot is released before done runs, so that Go must not block.
func TestGoFromDone(t *testing.T) {
	srv := newFakeServer(t)
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 1
	c := dial(t, opts)
	const n = 500
	l := newDoneLog(n)
	var issued atomic.Int64
	goErr := make(chan error, 1)
	var done func(uint64, error)
	done = func(seq uint64, err error) {
		if st := c.Stats(); st.InFlight != 0 {
			goErr <- fmt.Errorf("done of seq %d called with %d in flight: its slot is not free", seq, st.InFlight)
		}
		l.done(seq, err)
		if issued.Add(1) <= n {
			if err := c.Go([]byte("x"), done); err != nil {
				goErr <- err
			}
		}
	}
	issued.Add(1)
	if err := c.Go([]byte("x"), done); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.all:
	case err := <-goErr:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("deadlock: %d of %d reports done after 10s", l.n, n)
	}
	c.Close()
	l.check(t)
	select {
	case err := <-goErr:
		t.Fatal(err)
	default:
	}
	if st := c.Stats(); st.Acked != n || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGoBlocksOnFullWindow: Go waits while the window is full, and a Go blocked
// on it returns ErrClosed when Close starts.
func TestGoBlocksOnFullWindow(t *testing.T) {
	old := closeWait
	closeWait = 50 * time.Millisecond
	defer func() { closeWait = old }()
	srv := newFakeServer(t)
	srv.onReport = func(fc *fakeConn, seq uint64, _ []byte) {} // never acks
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 2
	c := dial(t, opts)
	l := newDoneLog(2)
	for range 2 {
		if err := c.Go([]byte("x"), l.done); err != nil {
			t.Fatal(err)
		}
	}
	third := make(chan error, 1)
	go func() { third <- c.Go([]byte("y"), func(uint64, error) { t.Error("done of a refused Go called") }) }()
	select {
	case err := <-third:
		t.Fatalf("Go with a full window returned %v at once", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Close()
	if err := <-third; !errors.Is(err, ErrClosed) {
		t.Fatalf("Go blocked on the window across Close: %v, want ErrClosed", err)
	}
	// Close gave up on the two in flight: their done got ErrClosed before it returned.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n != 2 || len(l.calls) != 2 {
		t.Fatalf("%d done calls when Close returned, want 2", l.n)
	}
	for seq, err := range l.errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("seq %d: %v, want ErrClosed", seq, err)
		}
	}
}

func TestGoErrors(t *testing.T) {
	srv := newFakeServer(t)
	srv.maxFrame = 100
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	never := func(uint64, error) { t.Error("done of a refused Go called") }
	if err := c.Go(make([]byte, 101), never); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Go of 101 bytes: %v, want ErrTooLarge", err)
	}
	if err := c.Go(make([]byte, protocol.MaxPayloadLimit+1), never); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Go over the protocol limit: %v, want ErrTooLarge", err)
	}
	l := newDoneLog(1)
	if err := c.Go(make([]byte, 100), l.done); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	if err := c.Go([]byte("fire and forget"), nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	l.check(t)
	if err := c.Go([]byte("late"), never); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close: %v, want ErrClosed", err)
	}
	if st := c.Stats(); st.Acked != 2 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoNack(t *testing.T) {
	srv := newFakeServer(t)
	var nacks atomic.Int32
	srv.onReport = func(fc *fakeConn, seq uint64, p []byte) {
		switch {
		case string(p) == "flaky" && nacks.Add(1) <= 2:
			fc.nack(seq, protocol.Nack{Code: protocol.CodeSpoolWrite, Message: "disk hiccup", Retryable: true})
		case string(p) == "bad":
			fc.nack(seq, protocol.Nack{Code: protocol.CodeBadPayload, Message: "not json"})
		default:
			fc.ack(seq)
		}
	}
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	var mu sync.Mutex
	outcome := map[string]error{}
	seqOf := map[string]uint64{}
	var wg sync.WaitGroup
	for _, p := range []string{"flaky", "bad"} {
		wg.Add(1)
		if err := c.Go([]byte(p), func(seq uint64, err error) {
			mu.Lock()
			outcome[p], seqOf[p] = err, seq
			mu.Unlock()
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := outcome["flaky"]; err != nil {
		t.Fatalf("report after retryable NACKs: %v", err)
	}
	var ne *NackError
	if err := outcome["bad"]; !errors.As(err, &ne) || ne.Seq != seqOf["bad"] || ne.Code != protocol.CodeBadPayload {
		t.Fatalf("refused report: %v, want *NackError bad_payload for seq %d", err, seqOf["bad"])
	}
	onFlaky, _ := srv.seen(seqOf["flaky"])
	onBad, _ := srv.seen(seqOf["bad"])
	if recvFlaky, recvBad := len(onFlaky), len(onBad); recvFlaky != 3 || recvBad != 1 {
		t.Fatalf("server received flaky %d times (want 3), bad %d times (want 1)", recvFlaky, recvBad)
	}
	if st := c.Stats(); st.Nacked != 3 || st.Resent != 2 || st.Acked != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGoRefusedForGood(t *testing.T) {
	srv := newFakeServer(t)
	srv.revokeToken()
	srv.start()
	c := dial(t, testOptions(srv, "agent-1"))
	l := newDoneLog(1)
	if err := c.Go([]byte("x"), l.done); err != nil {
		t.Fatal(err)
	}
	l.wait(t)
	var ep *protocol.ErrorPayload
	l.mu.Lock()
	for _, err := range l.errs {
		if !errors.As(err, &ep) || ep.Code != protocol.CodeTokenRevoked {
			t.Errorf("done got %v, want the token_revoked ERROR (final)", err)
		}
	}
	l.mu.Unlock()
	if err := c.Go([]byte("y"), func(uint64, error) { t.Error("done of a refused Go called") }); !errors.As(err, &ep) {
		t.Fatalf("later Go: %v, want the refusal", err)
	}
	if n := srv.numConns(); n != 1 {
		t.Fatalf("%d connections: token_revoked is final, the client must not reconnect", n)
	}
}

// TestGoAllocs: in steady state a report made by Go allocates nothing in the
// client (the fake server in light mode allocates nothing per report either).
func TestGoAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation count (the race detector makes sync.Pool drop records)")
	}
	srv := newFakeServer(t)
	srv.light = true
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 16
	c := dial(t, opts)
	payload := make([]byte, 256)
	acked := make(chan struct{}, 16)
	done := func(seq uint64, err error) {
		if err != nil {
			t.Error(err)
		}
		acked <- struct{}{}
	}
	batch := func() {
		for range 16 {
			if err := c.Go(payload, done); err != nil {
				t.Fatal(err)
			}
		}
		for range 16 {
			<-acked
		}
	}
	for range 50 {
		batch() // warm up pools and buffers
	}
	per := testing.AllocsPerRun(200, batch) / 16
	t.Logf("%.3f allocations per report", per)
	if per > 0.1 {
		t.Fatalf("%.3f allocations per report, want 0 in steady state", per)
	}
}

// BenchmarkGo keeps the window full from done callbacks: no goroutine per report.
func BenchmarkGo(b *testing.B) {
	srv := newFakeServer(b)
	srv.light = true
	srv.start()
	c, err := Dial(context.Background(), Options{Addr: srv.addr(), ClientID: "bench", MaxInFlight: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 256)
	var issued, finished atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	var done func(uint64, error)
	done = func(_ uint64, err error) {
		if err != nil {
			b.Error(err)
		}
		if issued.Add(1) <= n {
			c.Go(payload, done)
		}
		if finished.Add(1) == n {
			close(all)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range min(n, 64) {
		issued.Add(1)
		c.Go(payload, done)
	}
	<-all
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
}

// Reports made by done callbacks (their frames collected while the reader runs
// the callbacks) and by other goroutines at the same time, on reused records:
// each reaches the server once, in seq order on the connection, with its own
// payload. At most 6 reports are in flight at once (4 chains, 2 goroutines that
// wait for each of theirs), so no Go waits for the window of 8.
func TestGoFromDoneAndOtherGoroutines(t *testing.T) {
	srv := newFakeServer(t)
	var pmu sync.Mutex
	got := map[uint64]string{}
	srv.onReport = func(fc *fakeConn, seq uint64, payload []byte) {
		pmu.Lock()
		got[seq] = string(payload)
		pmu.Unlock()
		fc.ack(seq)
	}
	srv.start()
	opts := testOptions(srv, "agent-1")
	opts.MaxInFlight = 8
	c := dial(t, opts)
	const chains, perChain, others = 4, 300, 600
	const total = chains*perChain + others
	var wmu sync.Mutex
	want := map[uint64]string{}
	var finished atomic.Int64
	all := make(chan struct{})
	errs := make(chan error, 1)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	// issue makes one report; its done records the seq's payload, issues the next
	// of a chain (left > 1) and calls then.
	var issue func(name string, left int, then func())
	issue = func(name string, left int, then func()) {
		payload := fmt.Sprintf("%s-%d", name, left)
		err := c.Go([]byte(payload), func(seq uint64, err error) {
			if err != nil {
				fail(fmt.Errorf("%s: %w", payload, err))
			}
			wmu.Lock()
			want[seq] = payload
			wmu.Unlock()
			if left > 1 {
				issue(name, left-1, nil)
			}
			if then != nil {
				then()
			}
			if finished.Add(1) == total {
				close(all)
			}
		})
		if err != nil {
			fail(err)
		}
	}
	for i := range chains {
		issue(fmt.Sprintf("chain%d", i), perChain, nil)
	}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			acked := make(chan struct{}, 1)
			for i := range others / 2 {
				issue(fmt.Sprintf("other%d-%d", g, i), 1, func() { acked <- struct{}{} })
				select {
				case <-acked:
				case <-all:
					return
				case <-time.After(20 * time.Second):
					fail(fmt.Errorf("goroutine %d: report %d not done after 20s", g, i))
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case err := <-errs:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatalf("%d of %d reports done after 20s", finished.Load(), total)
	}
	c.Close()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	pmu.Lock()
	defer pmu.Unlock()
	if len(got) != total || len(want) != total {
		t.Fatalf("server got %d reports, done called for %d, want %d", len(got), len(want), total)
	}
	for seq, p := range want {
		if got[seq] != p {
			t.Fatalf("seq %d: server got %q, Go was given %q", seq, got[seq], p)
		}
	}
	srv.mu.Lock()
	conns := slices.Clone(srv.conns)
	srv.mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	fc := conns[0]
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.received) != total || !slices.IsSorted(fc.received) {
		t.Fatalf("the connection received %d reports, in seq order: %v", len(fc.received), slices.IsSorted(fc.received))
	}
}
