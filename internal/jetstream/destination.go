package jetstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// Observer receives measurements for metrics. Its methods must be cheap: they run
// on the acker goroutine and on NATS's callbacks.
type Observer interface {
	// Acked: n reports of one Submit were acknowledged by JetStream d after Submit,
	// dups of them as duplicates (Nats-Msg-Id seen within the duplicate window).
	Acked(n, dups int, d time.Duration)
	// Failed: n reports of one Submit were not confirmed (NACKed, retryable).
	Failed(n int)
	// Pending: n publishes await their acknowledgement, and at most window may (the
	// window shrinks while acknowledgements are slow). Called with the destination's
	// lock held, so it must not call back.
	Pending(n, window int)
	// Connected: the NATS connection went up (true) or down (false).
	Connected(up bool)
}

type nopObserver struct{}

func (nopObserver) Acked(int, int, time.Duration) {}
func (nopObserver) Failed(int)                    {}
func (nopObserver) Pending(int, int)              {}
func (nopObserver) Connected(bool)                {}

// Options configure Open; the fields mirror the jetstream.* configuration keys.
type Options struct {
	URLs           string // comma separated
	Stream         string
	Subject        string // template with ClientIDPlaceholder
	Creds          string
	TLSCA          string
	TLSCert        string
	TLSKey         string
	MaxPending     int // the most publishes awaiting their ack (window's ceiling); DefaultMaxPending if <= 0
	PublishTimeout time.Duration
	ConnectTimeout time.Duration
	RetryAfter     time.Duration // the NACK's hint
	RetryHorizon   time.Duration // the stream's duplicate window must cover it
	RequireDurable bool
	SyncAlways     bool
	Name           string // the NATS connection's name, for the server's monitoring
	Logger         *zap.Logger
	Observer       Observer
	// MaxRecord is the largest record line a report can make (its payload base64
	// encoded, plus the other fields); Open warns when the server's max_payload is
	// smaller, since such a report could never be published. 0: no check.
	MaxRecord int64
	// ProbeInterval is how often the stream is looked up while connected, for
	// Healthy; DefaultProbeInterval if <= 0.
	ProbeInterval time.Duration
}

// Defaults for Options left zero.
const (
	DefaultMaxPending     = 16384
	DefaultPublishTimeout = 5 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultRetryAfter     = time.Second
	DefaultProbeInterval  = time.Second
)

// defaults fills the fields left zero and checks what has no default.
func (o *Options) defaults() error {
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.Subject == "" {
		return errors.New("jetstream: no subject template")
	}
	return nil
}

// Destination publishes batches to a JetStream stream; it implements
// ingest.Destination. See the package doc for the contract.
type Destination struct {
	opts Options
	log  *zap.Logger
	obs  Observer
	nc   *nats.Conn
	js   jetstream.JetStream

	mu      sync.Mutex
	win     window
	pending int       // publishes started and not yet finished
	queue   []*waiter // Submits waiting for the window, in arrival order
	closed  bool
	// submitting counts Submits between their admission and queueing their job.
	submitting sync.WaitGroup
	lastWarn   time.Time // of the slow-broker warning

	jobs   chan *job // to the acker, FIFO; capacity MaxPending, never full (see Submit)
	done   chan struct{}
	stop   chan struct{} // closed by Close: ends the prober
	probed sync.WaitGroup

	healthy atomic.Pointer[string] // nil: connected and the stream answers; else why not
	closing atomic.Bool            // closeConn was called: the disconnect is ours
}

// job is one Submit in flight: its futures, awaited in order by the acker.
type job struct {
	w    ingest.Waiter
	seqs []uint64
	futs []jetstream.PubAckFuture
	err  error
	at   time.Time
}

// waiter is a Submit of n publishes waiting for the window. Once ready is closed it
// was admitted (its publishes counted in pending), or refused because the
// destination closed.
type waiter struct {
	n      int
	ready  chan struct{}
	closed bool
}

// Open connects to NATS, checks the stream (CheckStream: refusals are errors,
// warnings are logged) and starts the acker. The connection then reconnects
// forever; while it is down, Healthy says so and publishes fail fast.
func Open(opts Options) (*Destination, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	d := &Destination{opts: opts, log: opts.Logger, obs: opts.Observer, win: newWindow(opts.MaxPending, opts.PublishTimeout),
		jobs: make(chan *job, opts.MaxPending), done: make(chan struct{}), stop: make(chan struct{})}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.obs == nil {
		d.obs = nopObserver{}
	}
	down := "connecting to NATS"
	d.healthy.Store(&down)

	nopts, err := d.natsOptions()
	if err != nil {
		return nil, err
	}
	d.nc, err = nats.Connect(opts.URLs, nopts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect to %s: %w", opts.URLs, err)
	}
	// The library's own bound must never be what blocks: the window is the bound
	// (at most MaxPending), and one Submit may start a whole batch past it.
	d.js, err = jetstream.New(d.nc, jetstream.WithPublishAsyncMaxPending(opts.MaxPending+maxBatch),
		jetstream.WithPublishAsyncTimeout(opts.PublishTimeout))
	if err != nil {
		d.closeConn()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.ConnectTimeout)
	defer cancel()
	info, err := d.streamInfo(ctx)
	if err != nil {
		d.closeConn()
		return nil, fmt.Errorf("jetstream: stream %q: %w", opts.Stream, err)
	}
	warnings, err := CheckStream(info.Config, opts)
	for _, w := range warnings {
		d.log.Warn("jetstream stream is not durable enough: acknowledged reports can be lost", zap.String("stream", opts.Stream), zap.String("problem", w))
	}
	if err != nil {
		d.closeConn()
		return nil, err
	}
	if mp := d.nc.MaxPayload(); opts.MaxRecord > mp {
		d.log.Warn("NATS max_payload is below the largest report hawk accepts: such a report is NACKed (retryable) every time it is sent; "+
			"raise max_payload on the NATS servers or lower limits.max_frame_size",
			zap.Int64("max_payload", mp), zap.Int64("largest_record", opts.MaxRecord))
	}
	d.setHealthy(nil)
	d.log.Info("jetstream destination ready", zap.String("url", d.nc.ConnectedUrlRedacted()), zap.String("stream", opts.Stream),
		zap.String("subject", opts.Subject), zap.Int("replicas", info.Config.Replicas), zap.Duration("duplicate_window", info.Config.Duplicates),
		zap.Int("max_pending", opts.MaxPending))
	d.obs.Connected(true)
	go d.ack()
	d.probed.Add(1)
	go d.probe()
	return d, nil
}

// maxBatch is more than one Submit can carry (a connection's unanswered REPORTs
// are at most limits.max_in_flight, 65535).
const maxBatch = 1 << 16

// closeConn closes the NATS connection on purpose: its disconnect is no news.
func (d *Destination) closeConn() {
	d.closing.Store(true)
	d.nc.Close()
}

func (d *Destination) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	st, err := d.js.Stream(ctx, d.opts.Stream)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

func (d *Destination) setHealthy(why *string) {
	d.healthy.Store(why)
}

// Healthy reports whether reports can be published now (NATS connected and the
// stream answering), and why not: for /readyz, so that a balancer sends new agents
// to an instance whose broker is reachable.
func (d *Destination) Healthy() (bool, string) {
	if p := d.healthy.Load(); p != nil {
		return false, *p
	}
	return true, ""
}

// probe looks the stream up every ProbeInterval: connected to a NATS server is not
// the same as JetStream answering (a cluster without quorum, a deleted stream).
func (d *Destination) probe() {
	defer d.probed.Done()
	t := time.NewTicker(d.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if !d.nc.IsConnected() {
			continue // the disconnect handler has said so
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(d.opts.ProbeInterval, time.Second))
		_, err := d.streamInfo(ctx)
		cancel()
		was, _ := d.Healthy()
		if err != nil {
			why := "jetstream stream " + d.opts.Stream + " unreachable: " + err.Error()
			d.setHealthy(&why)
			if was {
				d.log.Warn("jetstream unreachable", zap.String("stream", d.opts.Stream), zap.Error(err))
			}
		} else if !was && d.nc.IsConnected() {
			d.setHealthy(nil)
			d.log.Info("jetstream reachable again", zap.String("stream", d.opts.Stream))
		}
	}
}

// Submit implements ingest.Destination: it publishes one message per record line
// (pipelined: it does not wait for the acknowledgements) and hands the futures to
// the acker, which calls w.Committed once all are acknowledged or one failed. It
// blocks while its publishes would not fit in the window (see window; a Submit into
// an empty pipeline never blocks, however large); blocked Submits start in the
// order they arrived.
func (d *Destination) Submit(b *ingest.Batch, w ingest.Waiter) {
	seqs := b.Seqs()
	n := len(seqs)
	if n == 0 {
		w.Committed(seqs, nil)
		return
	}
	if !d.admit(n, w) {
		w.Committed(seqs, ingest.ErrClosed)
		return
	}
	defer d.submitting.Done()

	j := &job{w: w, seqs: slices.Clone(seqs), futs: make([]jetstream.PubAckFuture, 0, n), at: time.Now()}
	// One copy of the lines for all messages: b is reused as soon as we return, and
	// the library keeps each message until its acknowledgement.
	data := bytes.Clone(b.Lines())
	var subject, clientID string
	for i := 0; i < n; i++ {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			j.err = errors.New("jetstream: batch has fewer lines than seqs")
			break
		}
		line := data[:end:end]
		data = data[end+1:]
		// Only a client id with JSON escapes is copied (rare: hawk escapes only '"',
		// '\\', control characters, invalid UTF-8, U+2028 and U+2029).
		id, _, ok := ingest.ParseKey(line, nil)
		if !ok {
			j.err = errors.New("jetstream: batch line is not a record")
			break
		}
		// A read's reports are one client's: the subject is rendered once per run.
		if i == 0 || string(id) != clientID {
			clientID = string(id)
			subject = Subject(d.opts.Subject, clientID)
		}
		msg := &nats.Msg{Subject: subject, Data: line, Header: nats.Header{jetstream.MsgIDHeader: []string{MsgID(clientID, seqs[i])}}}
		f, err := d.js.PublishMsgAsync(msg)
		if err != nil {
			j.err = fmt.Errorf("jetstream: publish: %w", err)
			break
		}
		j.futs = append(j.futs, f)
	}
	if len(j.futs) == 0 {
		d.finish(j, 0)
		return
	}
	// Never blocks: each unfinished job counts in pending, which admit keeps within
	// MaxPending (one batch alone may pass it).
	d.jobs <- j
}

// admit waits until n publishes fit in the window behind the Submits already
// waiting, and counts them in pending; false if the destination closed first. On
// true the caller holds a count of submitting until its job is queued.
func (d *Destination) admit(n int, w ingest.Waiter) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	if len(d.queue) == 0 && d.win.admits(n, d.pending) {
		d.start(n)
		d.mu.Unlock()
		return true
	}
	wt := &waiter{n: n, ready: make(chan struct{})}
	d.queue = append(d.queue, wt)
	d.mu.Unlock()
	ingest.SubmitWaits(w)
	<-wt.ready
	return !wt.closed
}

// start counts n admitted publishes; d.mu is held.
func (d *Destination) start(n int) {
	d.pending += n
	d.submitting.Add(1)
	d.obs.Pending(d.pending, d.win.size()) // under mu: the gauge follows the count in order
}

// wake admits the waiting Submits, oldest first, while they fit; d.mu is held.
func (d *Destination) wake() {
	for len(d.queue) > 0 && d.win.admits(d.queue[0].n, d.pending) {
		wt := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.start(wt.n)
		close(wt.ready)
	}
	if len(d.queue) == 0 {
		d.queue = nil // let the backing array go once the burst is over
	}
}

// ack awaits each job's acknowledgements in submission order (JetStream answers a
// connection's publishes in order, so waiting on the oldest first costs nothing).
func (d *Destination) ack() {
	defer close(d.done)
	// The library fails a future after PublishTimeout (or at a reconnect); this is
	// the backstop should it not.
	backstop := 2*d.opts.PublishTimeout + time.Second
	timer := time.NewTimer(backstop)
	defer timer.Stop()
	for j := range d.jobs {
		dups := 0
		timer.Reset(max(time.Until(j.at.Add(backstop)), 0))
	wait:
		for _, f := range j.futs {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					dups++
				}
			case err := <-f.Err():
				if j.err == nil {
					j.err = fmt.Errorf("jetstream: publish acknowledgement: %w", err)
				}
			case <-timer.C:
				if j.err == nil {
					j.err = errors.New("jetstream: no publish acknowledgement")
				}
				break wait
			}
		}
		d.finish(j, dups)
	}
}

// finish takes j's publishes out of pending, lets its latency adjust the window,
// admits what now fits, and answers j's Waiter.
func (d *Destination) finish(j *job, dups int) {
	latency := time.Since(j.at)
	d.mu.Lock()
	cut := d.win.observe(j.at, latency, j.err == nil, len(j.seqs), d.pending)
	d.pending -= len(j.seqs)
	d.wake()
	size := d.win.size()
	d.obs.Pending(d.pending, size)
	warn := cut && time.Since(d.lastWarn) >= slowWarnEvery
	if warn {
		d.lastWarn = time.Now()
	}
	d.mu.Unlock()
	if warn {
		d.log.Warn("JetStream acknowledges slower than half of jetstream.publish_timeout: hawk holds reports back, fewer publishes in flight",
			zap.Duration("latency", latency), zap.Duration("publish_timeout", d.opts.PublishTimeout), zap.Int("window", size))
	}
	if j.err != nil {
		d.obs.Failed(len(j.seqs))
		j.w.Committed(j.seqs, &ingest.DestinationError{Err: j.err, RetryAfter: d.opts.RetryAfter})
		return
	}
	d.obs.Acked(len(j.seqs), dups, time.Since(j.at))
	j.w.Committed(j.seqs, nil)
}

// slowWarnEvery spaces the warnings of a slow broker: the window may be cut every
// round trip while it stays slow.
const slowWarnEvery = time.Minute

// Close stops taking batches (later Submits get ingest.ErrClosed), waits for every
// batch already published to be acknowledged or to fail, answers its Waiters, and
// closes the NATS connection.
func (d *Destination) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.done
		return nil
	}
	d.closed = true
	for _, wt := range d.queue {
		wt.closed = true
		close(wt.ready)
	}
	d.queue = nil
	d.mu.Unlock()
	// A Submit past the closed check may still be publishing: its job must be
	// queued before the queue closes.
	d.submitting.Wait()
	close(d.stop)
	d.probed.Wait()
	close(d.jobs)
	<-d.done
	d.closeConn()
	return nil
}
