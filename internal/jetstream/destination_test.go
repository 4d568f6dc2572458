package jetstream_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

type waiterFunc func(seqs []uint64, err error)

func (f waiterFunc) Committed(seqs []uint64, err error) { f(seqs, err) }

type counts struct {
	acked, dups, failed, downs atomic.Int64
	mu                         sync.Mutex
	minWindow, maxWindow       int
}

func (c *counts) Acked(n, dups int, _ time.Duration) { c.acked.Add(int64(n)); c.dups.Add(int64(dups)) }
func (c *counts) Failed(n int)                       { c.failed.Add(int64(n)) }
func (c *counts) Pending(_, window int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.minWindow == 0 || window < c.minWindow {
		c.minWindow = window
	}
	c.maxWindow = max(c.maxWindow, window)
}
func (c *counts) Connected(up bool) {
	if !up {
		c.downs.Add(1)
	}
}

// shortPublishTimeout is the PublishTimeout of a test that stops NATS: a publish
// then fails after it.
const shortPublishTimeout = 2 * time.Second

func open(t *testing.T, ns *natstest.Server, obs jetstream.Observer, maxPending int, publishTimeout time.Duration) *jetstream.Destination {
	t.Helper()
	return openURL(t, ns.URL(), obs, maxPending, publishTimeout)
}

func openURL(t *testing.T, url string, obs jetstream.Observer, maxPending int, publishTimeout time.Duration) *jetstream.Destination {
	t.Helper()
	d, err := jetstream.Open(jetstream.Options{URLs: url, Stream: "REPORTS", Subject: "hawk.reports.<client_id>",
		MaxPending: maxPending, PublishTimeout: publishTimeout, RetryAfter: 20 * time.Millisecond,
		RetryHorizon: 2 * time.Minute, RequireDurable: true, SyncAlways: true, Observer: obs, ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func batch(client string, from uint64, n int) *ingest.Batch {
	b := &ingest.Batch{}
	for i := range n {
		b.Add(&ingest.Record{ClientID: client, Seq: from + uint64(i), ConnID: 1, Received: time.Now(), Payload: []byte(`{"v":1}`)})
	}
	return b
}

// agent submits seqs 1..total of client in batches of per, like a hawk connection
// of an agent that resends a NACKed report after the hint; it returns the NACKs seen.
func agent(t *testing.T, d *jetstream.Destination, client string, total, per int) (nacks int) {
	for seq := 1; seq <= total; seq += per {
		b := batch(client, uint64(seq), min(per, total-seq+1))
		for {
			ch := make(chan error, 1)
			d.Submit(b, waiterFunc(func(seqs []uint64, err error) { ch <- err }))
			err := <-ch
			if err == nil {
				break
			}
			var de *ingest.DestinationError
			if !errors.As(err, &de) || de.RetryAfter != 20*time.Millisecond {
				t.Errorf("%s seq %d: NACK error %v, want a DestinationError with the retry hint", client, seq, err)
				return nacks
			}
			nacks++
			time.Sleep(de.RetryAfter) // the agent's backoff
		}
	}
	return nacks
}

func checkExactlyOnce(t *testing.T, ns *natstest.Server, clients, total int) {
	t.Helper()
	byID, n := ns.Messages("REPORTS")
	if n != clients*total {
		t.Errorf("stream holds %d messages, want %d", n, clients*total)
	}
	for c := range clients {
		for s := 1; s <= total; s++ {
			id := jetstream.MsgID(fmt.Sprintf("agent.%d", c), uint64(s))
			if byID[id] != 1 {
				t.Fatalf("%s is in the stream %d times, want once", id, byID[id])
			}
		}
	}
}

// Under load from many agents (pipelined, the bound smaller than what they send),
// every report lands in the stream exactly once, and a resend of acknowledged
// reports is ACKed again as a duplicate without a second copy. With NATS up the
// whole time no report may be NACKed; the publish timeout is long, since the only
// NACK would be a publish acknowledged after it, and a stream that fsyncs every
// message on a disk shared with other jobs can take seconds (it did at load
// average 10 with 2 s).
func TestExactlyOnceUnderLoad(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	obs := &counts{}
	d := open(t, ns, obs, 256, time.Minute)
	const clients, total, per = 40, 500, 8
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			if n := agent(t, d, fmt.Sprintf("agent.%d", c), total, per); n != 0 {
				t.Errorf("agent %d: %d NACKs with the server up", c, n)
			}
		})
	}
	wg.Wait()
	// Resend the first 100 reports of agent.0 (an ACK lost, a reconnect elsewhere).
	if n := agent(t, d, "agent.0", 100, 10); n != 0 {
		t.Fatalf("resend NACKed %d times", n)
	}
	// At least the 100 resent: a publish whose ack came after PublishTimeout on a
	// loaded machine is retried, and the stream answers that retry as a duplicate too.
	if got := obs.dups.Load(); got < 100 {
		t.Errorf("duplicates counted %d, want at least 100", got)
	}
	if got := obs.acked.Load(); got != clients*total+100 {
		t.Errorf("acked %d, want %d", got, clients*total+100)
	}
	checkExactlyOnce(t, ns, clients, total)
}

// A broker slower than the agents: its link takes in fewer publishes a second than
// the agents keep in flight. Were they all published at once, acknowledgements
// would come after the publish timeout, each batch would be NACKed and resent while
// its first copy still waits in the queue, and the broker would spend itself on
// duplicates. hawk holds publishes back instead (Submit blocks, as on a slow disk):
// no report is NACKed, none is published twice, and each is in the stream once.
func TestSlowBrokerHoldsPublishesBack(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	obs := &counts{}
	// About 550 publishes a second; 1,600 in flight would wait about 3 s.
	d := openURL(t, ns.Throttle(128<<10), obs, jetstream.DefaultMaxPending, 2*time.Second)
	const clients, total, per = 200, 16, 8
	var wg sync.WaitGroup
	var nacks atomic.Int64
	start := time.Now()
	for c := range clients {
		wg.Go(func() { nacks.Add(int64(agent(t, d, fmt.Sprintf("agent.%d", c), total, per))) })
	}
	wg.Wait()
	t.Logf("%d reports in %s: %d NACKs, %d duplicates; window %d to %d", clients*total, time.Since(start).Round(time.Millisecond),
		nacks.Load(), obs.dups.Load(), obs.minWindow, obs.maxWindow)
	if nacks.Load() != 0 || obs.dups.Load() != 0 {
		t.Errorf("%d NACKs, %d duplicates from a slow broker; want none", nacks.Load(), obs.dups.Load())
	}
	checkExactlyOnce(t, ns, clients, total)
}

// The NATS server restarted under load: agents get retryable NACKs with the hint,
// readiness goes down and comes back, and once they have resent, every report is in
// the stream exactly once.
func TestNATSRestartUnderLoad(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	obs := &counts{}
	d := open(t, ns, obs, 1024, shortPublishTimeout)
	const clients, total, per = 20, 2000, 4
	var wg sync.WaitGroup
	var nacks atomic.Int64
	for c := range clients {
		wg.Go(func() { nacks.Add(int64(agent(t, d, fmt.Sprintf("agent.%d", c), total, per))) })
	}
	testutil.Eventually(t, 2*time.Minute, func() bool { return obs.acked.Load() >= clients*total/4 }, "a quarter acked")
	ns.Stop()
	testutil.Eventually(t, time.Minute, func() bool { ok, _ := d.Healthy(); return !ok }, "not healthy while NATS is down")
	_, why := d.Healthy()
	testutil.Eventually(t, time.Minute, func() bool { return obs.failed.Load() > 0 }, "NACKs while NATS is down")
	ns.Restart()
	testutil.Eventually(t, time.Minute, func() bool { ok, _ := d.Healthy(); return ok }, "healthy again")
	wg.Wait()
	if nacks.Load() == 0 || obs.downs.Load() == 0 {
		t.Errorf("nacks %d, disconnects %d: want both > 0", nacks.Load(), obs.downs.Load())
	}
	t.Logf("not ready while down: %q; %d NACKs, %d duplicates", why, nacks.Load(), obs.dups.Load())
	checkExactlyOnce(t, ns, clients, total)
}

// Close answers every Waiter; a Submit after Close gets ErrClosed.
func TestCloseAnswers(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	d := open(t, ns, nil, 64, shortPublishTimeout)
	var answered atomic.Int64
	for i := range 50 {
		d.Submit(batch("c", uint64(i*10+1), 10), waiterFunc(func(seqs []uint64, err error) { answered.Add(int64(len(seqs))) }))
	}
	d.Close()
	if answered.Load() != 500 {
		t.Fatalf("%d of 500 reports answered after Close", answered.Load())
	}
	errc := make(chan error, 1)
	d.Submit(batch("c", 9999, 1), waiterFunc(func(_ []uint64, err error) { errc <- err }))
	if err := <-errc; !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("Submit after Close: %v, want ErrClosed", err)
	}
}

// Close answers the Submits still waiting for the window with ErrClosed, and the
// published ones once acknowledged; every Submit returns.
func TestCloseAnswersWaitingSubmits(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	// About 16 publishes a second, and a window of 16: 2 of the 20 Submits start.
	d := openURL(t, ns.Throttle(4<<10), nil, 16, shortPublishTimeout)
	var answered, closed atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			d.Submit(batch(fmt.Sprintf("c%d", i), 1, 8), waiterFunc(func(_ []uint64, err error) {
				answered.Add(1)
				if errors.Is(err, ingest.ErrClosed) {
					closed.Add(1)
				}
			}))
		})
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return jetstream.Waiting(d) >= 10 }, "Submits waiting for the window")
	d.Close()
	wg.Wait()
	if answered.Load() != 20 || closed.Load() < 10 {
		t.Fatalf("%d of 20 Submits answered, %d with ErrClosed; want 20, at least 10", answered.Load(), closed.Load())
	}
}

// Start is refused when the stream does not exist or is not durable enough.
func TestOpenRefuses(t *testing.T) {
	ns := natstest.Start(t)
	ns.CreateStream("REPORTS", "hawk.reports.*")
	base := jetstream.Options{URLs: ns.URL(), Stream: "REPORTS", Subject: "hawk.reports.<client_id>", RetryHorizon: time.Minute, RequireDurable: true}
	for name, mod := range map[string]func(*jetstream.Options){
		"missing stream":    func(o *jetstream.Options) { o.Stream = "NOPE" },
		"subject":           func(o *jetstream.Options) { o.Subject = "other.<client_id>" },
		"duplicate window":  func(o *jetstream.Options) { o.RetryHorizon = time.Hour },
		"1 replica, unsync": func(o *jetstream.Options) {},
	} {
		o := base
		mod(&o)
		if d, err := jetstream.Open(o); err == nil {
			d.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}
