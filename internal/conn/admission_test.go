package conn

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// refusalRecorder is a closeRecorder that also counts refusals at accept.
type refusalRecorder struct {
	closeRecorder
	rmu     sync.Mutex
	refused map[protocol.Code]int
}

func (o *refusalRecorder) Refused(code protocol.Code) {
	o.rmu.Lock()
	defer o.rmu.Unlock()
	if o.refused == nil {
		o.refused = map[protocol.Code]int{}
	}
	o.refused[code]++
}

func (o *refusalRecorder) count(code protocol.Code) int {
	o.rmu.Lock()
	defer o.rmu.Unlock()
	return o.refused[code]
}

// startServerWith is startServer with an observer that also counts refusals.
func startServerWith(t *testing.T, s *Settings) (*testServer, *refusalRecorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &refusalRecorder{}
	ts := &testServer{sp: &fakeDest{}, obs: &rec.closeRecorder, addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	ts.m = New(Options{Settings: s, Destination: ts.sp, Logger: zaptest.NewLogger(t), Observer: rec})
	go func() { defer close(ts.done); ts.m.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-ts.done
		closeAll(ts.m, "test over")
		ts.m.Close()
		ts.sp.wg.Wait()
	})
	return ts, rec
}

// Over the rate, a connection gets ERROR busy before any HELLO, with a
// retry_after_ms that names when a token is its; obeying it gets it in.
func TestOverRateRefusedBusyWithRetryHint(t *testing.T) {
	s := testSettings()
	s.HandshakeRate = 2 // a burst of 1, a token every 500 ms
	ts, rec := startServerWith(t, s)
	first := testutil.Dial(t, ts.addr)
	if w := first.Hello("first", ""); w.ConnID == 0 {
		t.Fatal("first connection not welcomed")
	}
	second := testutil.Dial(t, ts.addr)
	e := second.ExpectError(protocol.CodeBusy) // no HELLO sent: refused at accept
	if e.RetryAfterMS <= 0 || e.RetryAfterMS > 1000 {
		t.Fatalf("retry_after_ms = %d, want within (0, 1000] at 2 handshakes/s", e.RetryAfterMS)
	}
	if !strings.Contains(e.Message, "2 handshakes/s") {
		t.Errorf("message %q does not name the rate", e.Message)
	}
	if !protocol.CodeBusy.Retryable() {
		t.Error("busy must be retryable")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return rec.count(protocol.CodeBusy) == 1 }, "one busy refusal counted")
	testutil.Eventually(t, 5*time.Second, func() bool { return len(ts.obs.closed()) == 1 }, "the refusal counted as a close")
	if got := ts.obs.closed(); got[0] != ReasonBusy {
		t.Fatalf("closed with %v, want busy", got)
	}

	time.Sleep(time.Duration(e.RetryAfterMS) * time.Millisecond) // what the client is told to do
	third := testutil.Dial(t, ts.addr)
	if w := third.Hello("second", ""); w.ConnID == 0 {
		t.Fatal("the connection that waited retry_after_ms was not welcomed")
	}
	if p := ts.m.PeakAdmissionsPerSecond(); p < 1 || p > 2 {
		t.Errorf("peak admissions/s = %d, want 1 or 2", p)
	}
}

// Under the rate every connection is admitted; 0 is no limit; max_conns is
// checked first and counted as its own refusal.
func TestUnderRateAdmittedAndTooManyConnsCounted(t *testing.T) {
	for _, rate := range []int{0, 1000} { // 1000/s: a burst of 100, more than we open
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			s := testSettings()
			s.HandshakeRate = rate
			s.MaxConns = 40
			ts, rec := startServerWith(t, s)
			for i := range 40 {
				p := testutil.Dial(t, ts.addr)
				if w := p.Hello(fmt.Sprint("c", i), ""); w.ConnID == 0 {
					t.Fatalf("connection %d not welcomed", i)
				}
			}
			over := testutil.Dial(t, ts.addr)
			over.ExpectError(protocol.CodeTooManyConns)
			testutil.Eventually(t, 5*time.Second, func() bool { return rec.count(protocol.CodeTooManyConns) == 1 }, "one too_many_connections counted")
			if n := rec.count(protocol.CodeBusy); n != 0 {
				t.Fatalf("%d busy refusals under the rate", n)
			}
		})
	}
}

// The bucket, on a clock of our own: a burst of a tenth of the rate, then one
// admission per interval; in no window of one second more than rate + burst.
func TestBucketBoundsEveryWindow(t *testing.T) {
	const rate = 100 // interval 10 ms, burst 10
	var a admission
	now := int64(time.Hour) // any start: mono time is positive
	for i := range 10 {
		if ok, _ := a.admit(now, rate); !ok {
			t.Fatalf("burst: admission %d refused", i)
		}
	}
	ok, free := a.admit(now, rate)
	if ok || free != now+int64(10*time.Millisecond) {
		t.Fatalf("11th at once: ok=%v, free in %v; want refused, free in 10ms", ok, time.Duration(free-now))
	}
	if ok, _ := a.admit(free, rate); !ok {
		t.Fatal("refused at the time it was told a token is free")
	}

	// Arrivals at 3× the rate for 5 s, every 1/300 s.
	var b admission
	var admitted []int64
	start := int64(time.Hour)
	for t0 := start; t0 < start+int64(5*time.Second); t0 += int64(time.Second) / 300 {
		if ok, _ := b.admit(t0, rate); ok {
			admitted = append(admitted, t0)
		}
	}
	worst := 0
	for i, j := 0, 0; j < len(admitted); j++ {
		for admitted[j]-admitted[i] >= int64(time.Second) {
			i++
		}
		worst = max(worst, j-i+1)
	}
	if limit := rate + int(burst(rate)); worst > limit || worst < rate {
		t.Fatalf("most admissions in one second: %d, want between %d and %d", worst, rate, limit)
	}
	if p := int(b.peak.Load()); p > rate+int(burst(rate)) {
		t.Fatalf("peak gauge %d over rate+burst", p)
	}
}

// A crowd refused at once is told to come back one by one at the rate, never
// later than maxRetryAfter.
func TestRetryHintsSpreadTheCrowd(t *testing.T) {
	const rate = 100
	var a admission
	now := int64(time.Hour)
	for a.admitOK(now, rate) {
	}
	var last time.Duration
	for i := range 50 {
		_, free := a.admit(now, rate)
		h := a.reserveRetry(now, free, rate)
		if h <= 0 {
			t.Fatalf("refusal %d: hint %v", i, h)
		}
		// Slot i is at free + i·10ms, plus up to 10ms of jitter.
		lo := time.Duration(free-now) + time.Duration(i)*10*time.Millisecond
		if h < lo || h >= lo+10*time.Millisecond {
			t.Fatalf("refusal %d: hint %v, want in [%v, %v)", i, h, lo, lo+10*time.Millisecond)
		}
		last = h
	}
	if last < 490*time.Millisecond {
		t.Fatalf("50 refusals at 100/s spread over %v, want about 500ms", last)
	}
	for range 10_000 { // far past maxRetryAfter at 100/s
		_, free := a.admit(now, rate)
		if h := a.reserveRetry(now, free, rate); h > maxRetryAfter {
			t.Fatalf("hint %v past maxRetryAfter", h)
		}
	}
}

func (a *admission) admitOK(now int64, rate int) bool { ok, _ := a.admit(now, rate); return ok }

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func TestDrainSpreadGrowsWithConnections(t *testing.T) {
	s := func(rate int, spread, timeout time.Duration) *Settings {
		return &Settings{HandshakeRate: rate, DrainSpread: spread, DrainTimeout: timeout}
	}
	for _, c := range []struct {
		name           string
		n              int
		s              *Settings
		want           time.Duration
		raised, capped bool
	}{
		{"few connections keep drain.spread", 100, s(5000, 5*time.Second, 30*time.Second), 5 * time.Second, false, false},
		{"no limit keeps drain.spread", 1_000_000, s(0, 5*time.Second, 30*time.Second), 5 * time.Second, false, false},
		{"40000 at 5000/s need 8.9s", 40000, s(5000, 5*time.Second, 30*time.Second), secs(40000.0 / 4500), true, false},
		{"capped at half of drain.timeout", 200000, s(5000, 5*time.Second, 30*time.Second), 15 * time.Second, true, true},
		{"a spread above half the timeout is kept", 200000, s(5000, 20*time.Second, 30*time.Second), 20 * time.Second, false, true},
		{"spread never beyond the timeout", 10, s(5000, 40*time.Second, 30*time.Second), 30 * time.Second, false, false},
	} {
		got, raised, capped := drainSpread(c.n, c.s)
		if got != c.want || raised != c.raised || capped != c.capped {
			t.Errorf("%s: drainSpread = %v raised=%v capped=%v, want %v %v %v", c.name, got, raised, capped, c.want, c.raised, c.capped)
		}
		if got > c.s.DrainTimeout {
			t.Errorf("%s: spread %v beyond the timeout", c.name, got)
		}
	}
}

func TestGoawayHintWithinSlotAndDeadline(t *testing.T) {
	const slot = 5 * time.Millisecond
	now := int64(time.Hour)
	for range 1000 {
		if h := goawayHint(now, now, slot, 10*time.Second); h < 0 || h >= slot {
			t.Fatalf("on time: hint %v outside [0, %v)", h, slot)
		}
		// Sent 800µs early by a timer that wakes once a millisecond: the hint makes up for it.
		early := int64(800 * time.Microsecond)
		if h := goawayHint(now, now+early, slot, 10*time.Second); h < time.Duration(early) || h >= time.Duration(early)+slot {
			t.Fatalf("early: hint %v outside [800µs, 5.8ms)", h)
		}
		if h := goawayHint(now, now+int64(time.Minute), slot, 10*time.Second); h > 5*time.Second {
			t.Fatalf("hint %v not below half the time left (10s)", h)
		}
	}
	if h := goawayHint(now, now, slot, 0); h != 0 {
		t.Fatalf("past the deadline: hint %v, want 0", h)
	}
}

// A drain whose connections could not reconnect within the rate in drain.spread
// stretches it, says so, and gives every GOAWAY a hint within its slot and well
// before its deadline.
func TestDrainRaisesSpreadAndHintsEachGoaway(t *testing.T) {
	s := testSettings()
	s.DrainSpread = 10 * time.Millisecond
	s.DrainTimeout = 3 * time.Second
	ts := startServer(t, s) // no rate while connecting
	const n = 20
	peers := make([]*testutil.Peer, n)
	for i := range peers {
		peers[i] = testutil.Dial(t, ts.addr)
		peers[i].Hello(fmt.Sprint("d", i), "")
	}
	ns := *s
	ns.HandshakeRate = 100 // 20 connections at 90/s need 222ms
	ts.m.Apply(&ns)
	ts.ln.Close()
	res := make(chan DrainResult, 1)
	go func() { res <- ts.m.Drain(context.Background(), "upgrade") }()
	wantSpread := secs(float64(n) / (fleetShare * 100))
	slot := wantSpread / n
	for i, p := range peers {
		var g protocol.Goaway
		if err := protocol.ParseJSON(p.Expect(protocol.TypeGoaway), &g); err != nil {
			t.Fatal(err)
		}
		if g.ReconnectAfterMS < 0 || g.ReconnectAfterMS >= g.DeadlineMS || time.Duration(g.ReconnectAfterMS)*time.Millisecond > slot+time.Millisecond {
			t.Fatalf("GOAWAY %d: %+v; want 0 <= reconnect_after_ms <= slot (%v) + 1ms, and < deadline_ms", i, g, slot)
		}
	}
	if r := ts.m.DrainRemaining(); r != n {
		t.Errorf("DrainRemaining = %d before anyone left, want %d", r, n)
	}
	for _, p := range peers {
		p.Conn.Close()
	}
	r := <-res
	if d := r.Spread - wantSpread; d < -time.Microsecond || d > time.Microsecond || r.Goaways != n || r.Cut != 0 {
		t.Fatalf("drain result %+v, want spread %v, %d goaways, none cut", r, wantSpread, n)
	}
	if ts.m.DrainRemaining() != 0 {
		t.Errorf("DrainRemaining = %d after the drain", ts.m.DrainRemaining())
	}
	lines := ts.logs.FilterMessageSnippet("drain.spread raised from 10ms to 200ms: 20 connections at 100 handshakes/s").All()
	if len(lines) != 1 {
		t.Fatalf("want one line saying the spread was raised; log:\n%v", ts.logs.All())
	}
}
