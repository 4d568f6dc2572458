package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

const (
	dialConcurrency = 64 // connections being set up at once
	histShards      = 64
	maxErrorsShown  = 5
)

type loadConfig struct {
	addr, idPrefix, token, ackedLog string
	timeline, cpuProfile            string
	tlsFlags                        tlsFlags
	tls                             *tls.Config
	clients, window, size           int
	latencyEvery                    int // measure the ACK latency of one report in this many
	duration, drainTimeout, warmup  time.Duration
	timelineStep                    time.Duration
	rate                            float64
	json, srcSpread, perReportAcks  bool
	raw                             bool
}

// summary is the final report; with -json it is printed as one JSON object.
type summary struct {
	Clients       int     `json:"clients"`
	Window        int     `json:"window"`
	Size          int     `json:"size"`
	ElapsedS      float64 `json:"elapsed_s"`
	Sent          uint64  `json:"sent"`
	Acked         uint64  `json:"acked"`
	Nacked        uint64  `json:"nacked"`
	Resent        uint64  `json:"resent"`
	Errors        uint64  `json:"errors"`
	ConnectErrors uint64  `json:"connect_errors"`
	Reconnects    uint64  `json:"reconnects"`
	Goaways       uint64  `json:"goaways"`
	DialFailures  uint64  `json:"dial_failures"`
	TLSResumed    uint64  `json:"tls_resumed"` // TLS connections that resumed a session
	AckedPerS     float64 `json:"acked_per_s"`
	// With -warmup: the reports acked in the steady window (-d, after the warm-up)
	// and their rate, the figure comparable with a load tool that excludes its warm-up.
	SteadyS         float64 `json:"steady_s"`
	SteadyAcked     uint64  `json:"steady_acked"`
	SteadyAckedPerS float64 `json:"steady_acked_per_s"`
	LatencyP50US    int64   `json:"latency_p50_us"`
	LatencyP90US    int64   `json:"latency_p90_us"`
	LatencyP99US    int64   `json:"latency_p99_us"`
	LatencyMaxUS    int64   `json:"latency_max_us"`
	// A reconnect storm, as the clients saw it (storm.go).
	Busy              uint64  `json:"busy"`                 // ERROR busy received (dials and reconnects)
	BusyAfterGoaway   uint64  `json:"busy_after_goaway"`    // of which after the first GOAWAY seen
	ReconnectPeakPerS int     `json:"reconnect_peak_per_s"` // most reconnects completed in any one second
	MoveS             float64 `json:"move_s"`               // first GOAWAY seen to the last reconnect
}

func cmdLoad(args []string, stdout, stderr io.Writer) int {
	var cfg loadConfig
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "server address `host:port`")
	fs.IntVar(&cfg.clients, "c", 1000, "number of clients (connections)")
	fs.IntVar(&cfg.window, "w", 8, "reports in flight per client (its window, kept full)")
	fs.IntVar(&cfg.size, "s", 256, "payload size in bytes")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "how long to issue reports (with -warmup: the steady window after it)")
	fs.DurationVar(&cfg.warmup, "warmup", 0, "issue reports for `D` once every client is connected before the -d window starts; only the window counts in steady_acked_per_s")
	fs.Float64Var(&cfg.rate, "rate", 0, "total reports per second over all clients; 0 = as fast as acks allow")
	fs.StringVar(&cfg.idPrefix, "id-prefix", "load", "client ids are `PREFIX`-0 … PREFIX-(c-1)")
	fs.StringVar(&cfg.token, "token", "", "auth token")
	cfg.tlsFlags.register(fs)
	fs.BoolVar(&cfg.json, "json", false, "print the summary as one JSON object")
	fs.StringVar(&cfg.ackedLog, "acked-log", "", "write to `FILE` one line \"client_id seq\" per acked report (flushed at exit)")
	fs.StringVar(&cfg.timeline, "timeline", "", "write to `FILE` the ack latencies by the time of their ACK, per -timeline-step: its start (Unix ms), acked, p50, p99, max (µs) and its histogram (scripts/upgrade-phases.py reads it)")
	fs.DurationVar(&cfg.timelineStep, "timeline-step", 100*time.Millisecond, "the width of a -timeline bucket")
	fs.IntVar(&cfg.latencyEvery, "latency-every", 8, "measure the ack latency of one report in `N` of each slot's (1: every report; with -timeline every report is measured, whatever N)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (connecting to the end of the drain) to `FILE`")
	fs.BoolVar(&cfg.perReportAcks, "per-report-acks", false, "ask for one ACK frame per report instead of range acknowledgements (ACK_RANGE)")
	fs.BoolVar(&cfg.srcSpread, "src-spread", true, "spread source addresses over 127.0.0.2-201 when the target is IPv4 loopback")
	fs.BoolVar(&cfg.raw, "raw", false, "a lean generator, as ../shared/bench's load is: one goroutine per connection writes the wire format itself, with no client library, so no resends, reconnection or -rate (a NACK counts as an error; after a GOAWAY the connection only waits for its answers); for throughput beside the reference")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 10*time.Second, "at the end, how long to wait for reports in flight before giving up on them (they count as errors)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: client load [flags]

Runs c clients (ids PREFIX-0 … PREFIX-(c-1)); each keeps w reports in flight with
the asynchronous client.Go: when a report is acked, its callback issues the next
one (no goroutine per report). Connections are set up 64 at a time. Every second a
progress line goes to stderr. At -d (or on SIGINT/SIGTERM) no new reports are
issued, the ones in flight are waited for (at most -drain-timeout; a second signal
stops waiting), the clients are closed and a summary is printed on stdout: sent,
acked, nacked, resent, errors, connect_errors, reconnects, goaways, dial_failures,
busy, busy_after_goaway, reconnect_peak_per_s, move_s, acked_per_s, ack latency
p50/p90/p99/max (µs, from issuing a report to its ACK; of one report in
-latency-every of each slot's, 8 by default: the max is theirs; every report with
-timeline; with -warmup, of the reports acked within the steady window only).

  acked        reports acknowledged (the lines of -acked-log)
  nacked       NACK frames received (retryable ones too; they are retried)
  errors       reports that failed (a non-retryable NACK, a report still
               unacked at the drain timeout, a refused reconnect)
  connect_errors  clients that could not connect before -d ended (not those
               a signal stopped while connecting)
  busy         ERROR busy refusals received (the server admits handshakes at
               limits.handshake_rate); a first dial refused busy waits the
               retry_after_ms it names and dials again. busy_after_goaway:
               those after the first GOAWAY (the storm, at the new process)
  reconnect_peak_per_s  the most reconnects completed within one second (sliding
               window): after a SIGHUP, the handshakes the new process admitted,
               as the clients saw them
  move_s       from the first GOAWAY any client saw to the last reconnect
  acked_per_s  acked / elapsed, elapsed being from the start to the end of the drain
  steady_acked_per_s  with -warmup D: once every client is connected, reports are
               issued for D, then for the -d window; the reports acked within the
               window / its length (steady_acked, steady_s). stderr gets a line
               when the window begins and ends

With -raw, no client library: each connection's goroutine says HELLO (asking for
ACK_RANGE unless -per-report-acks), writes w REPORTs, and after each read writes as
many new ones as that read answered, in one write (as ../shared/bench's load keeps
its window full). It keeps nothing per report but the send time of the measured
ones, so it resends nothing and does not reconnect: a NACK is an error, and a
connection told GOAWAY or ERROR stops issuing (ERROR: what was in flight is an
error). No progress line. It is the generator for throughput beside the
reference, whose load tool is as lean: on a 2-core machine the generator's CPU is
taken from the server's.

Exit status: 0 if every report succeeded and every client connected; 1 if any
report failed (errors > 0) or a client never connected
(connect_errors > 0); 2 on bad usage.

`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 || cfg.clients < 1 || cfg.window < 1 || cfg.size < 0 || cfg.size > protocol.MaxPayloadLimit || cfg.duration <= 0 || cfg.warmup < 0 || cfg.rate < 0 || cfg.timelineStep < time.Millisecond || cfg.latencyEvery < 1 {
		fs.Usage()
		return 2
	}
	var err error
	if cfg.tls, err = cfg.tlsFlags.config(); err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return 2
	}
	if cfg.raw && (cfg.rate > 0 || cfg.timeline != "" || cfg.ackedLog != "" || cfg.tls != nil) {
		fmt.Fprintln(stderr, "client: load -raw takes none of -rate, -timeline, -acked-log or TLS: they need the client library")
		return 2
	}
	if cfg.timeline != "" {
		cfg.latencyEvery = 1 // a bucket's count is its ACKs: each must be recorded
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "client: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "client: %v\n", err)
			return 1
		}
	}
	run := runLoad
	if cfg.raw {
		run = runRawLoad
	}
	sum, err := run(cfg, stderr)
	if cfg.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return 1
	}
	if cfg.json {
		b, _ := json.Marshal(sum)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintf(stdout, "clients=%d window=%d size=%d elapsed_s=%.2f\n", sum.Clients, sum.Window, sum.Size, sum.ElapsedS)
		fmt.Fprintf(stdout, "sent=%d acked=%d nacked=%d resent=%d errors=%d connect_errors=%d\n", sum.Sent, sum.Acked, sum.Nacked, sum.Resent, sum.Errors, sum.ConnectErrors)
		fmt.Fprintf(stdout, "reconnects=%d goaways=%d dial_failures=%d\n", sum.Reconnects, sum.Goaways, sum.DialFailures)
		fmt.Fprintf(stdout, "busy=%d busy_after_goaway=%d reconnect_peak_per_s=%d move_s=%.2f\n", sum.Busy, sum.BusyAfterGoaway, sum.ReconnectPeakPerS, sum.MoveS)
		fmt.Fprintf(stdout, "acked_per_s=%.1f\n", sum.AckedPerS)
		fmt.Fprintf(stdout, "latency_us p50=%d p90=%d p99=%d max=%d\n", sum.LatencyP50US, sum.LatencyP90US, sum.LatencyP99US, sum.LatencyMaxUS)
	}
	if sum.Errors > 0 || sum.ConnectErrors > 0 {
		return 1
	}
	return 0
}

// loadRun is the state shared by the load generator's goroutines.
type loadRun struct {
	cfg     loadConfig
	stderr  io.Writer
	payload []byte
	hists   [histShards]histogram
	tl      *timeline // nil without -timeline
	paced   bool      // -rate: slots wait for the dispatcher (dispatch)
	// inWindow: the ACKs seen now count in the summary's latencies. The whole run
	// without -warmup; with it, the steady window only (measureWindow), so that
	// connection set-up and the warm-up are left out of the quantiles as they are
	// out of steady_acked_per_s.
	inWindow atomic.Bool

	// With -rate, slots wait here (FIFO) for the dispatcher to issue them.
	waitMu   sync.Mutex
	waitq    []*slot
	waitKick chan struct{} // cap 1: waitq is not empty

	stopping      atomic.Bool // no new reports
	gaveUp        atomic.Bool // the drain ended with reports in flight: their outcomes are ignored
	interrupted   atomic.Bool // stopped by a signal, not by -d
	errs          atomic.Uint64
	connectErrs   atomic.Uint64
	connected     atomic.Int64
	active        atomic.Int64  // live slots, plus one held by runLoad until it stops issuing
	drained       chan struct{} // closed when active drops to 0
	errorsShownMu sync.Mutex
	errorsShown   int

	logMu sync.Mutex // the acked log file
	logW  *bufio.Writer

	cmu     sync.Mutex
	clients []*loadClient // nil where not (yet) connected

	start time.Time
	storm stormStats
}

// loadClient is one client and its window of slots.
type loadClient struct {
	r     *loadRun
	c     *client.Client
	id    string
	hist  *histogram
	ab    *ackBuf // nil without -acked-log
	slots []slot
}

// slot keeps one report of a client's window in flight: when its report is done,
// its done callback (on the client's reader goroutine) records the outcome and
// issues the next one with client.Go. No goroutine and no allocation per report:
// the callback is a method value built once per slot.
//
// A slot measures the ACK latency of one report in -latency-every: reading the
// clock at issue and at ACK and recording into the histogram was a tenth of the
// generator's own CPU per report. Which report is measured depends only on its
// place in the slot's sequence, never on its latency, so the sample's quantiles
// estimate those of every report; slots start at staggered places, so each batch
// of a client's reports carries some measured ones.
type slot struct {
	lc       *loadClient
	t0       int64 // mono.Now() when the report in flight was issued, if measured
	measured bool  // the report in flight is measured
	skip     int   // reports to issue before the next measured one
	// Plain counters, no atomic operation per report: a slot's issue and its
	// done never run at once (each issue follows the previous report's done), and
	// they are read only once Close has returned. issued-handled is what the drain
	// gave up on.
	issued, handled, acked uint64
	done                   func(seq uint64, err error)
}

// ackBuf buffers one client's acked-log lines; its slots share it.
type ackBuf struct {
	mu  sync.Mutex
	buf []byte
}

const ackBufFlush = 16 << 10

// finish fills in what follows from the counts: the rates, the steady window's
// (zero without one), and the latencies of the histogram shards hs together.
func (s *summary) finish(elapsed time.Duration, steady window, hs []histogram) {
	var h histogram
	for i := range hs {
		h.merge(&hs[i])
	}
	s.ElapsedS = elapsed.Seconds()
	s.AckedPerS = float64(s.Acked) / elapsed.Seconds()
	s.SteadyS, s.SteadyAcked = steady.secs, steady.acked
	if steady.secs > 0 {
		s.SteadyAckedPerS = float64(steady.acked) / steady.secs
	}
	s.LatencyP50US, s.LatencyP90US, s.LatencyP99US = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	s.LatencyMaxUS = h.max.Load()
}

// loadPayload is a JSON string of exactly size bytes: any payload is opaque to
// hawk, and valid JSON keeps spool files readable.
func loadPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = 'x'
	}
	if size >= 2 {
		p[0], p[size-1] = '"', '"'
	}
	return p
}

// onSignals calls stop at the first SIGINT or SIGTERM (stop issuing reports) and
// abort at the next (stop waiting for those in flight), until the returned func
// is called.
func onSignals(stderr io.Writer, stop, abort func()) (done func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case s := <-sigs:
				if n == 1 {
					fmt.Fprintf(stderr, "load: %v: stopping (again to stop waiting for reports in flight)\n", s)
					stop()
				} else {
					abort()
				}
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
	}
}

// errGaveUp is the error counted for the reports still unacked when the drain ends.
var errGaveUp = errors.New("no ACK before the drain ended: giving up on them")

func runLoad(cfg loadConfig, stderr io.Writer) (summary, error) {
	stderr = &lockedWriter{w: stderr}
	r := &loadRun{cfg: cfg, stderr: stderr, clients: make([]*loadClient, cfg.clients), drained: make(chan struct{})}
	r.active.Store(1) // runLoad's own reference, dropped once issuing has stopped
	r.payload = loadPayload(cfg.size)
	if cfg.ackedLog != "" {
		f, err := os.Create(cfg.ackedLog)
		if err != nil {
			return summary{}, err
		}
		defer f.Close()
		r.logW = bufio.NewWriterSize(f, 256<<10)
	}

	// First signal: stop issuing (graceful). Second: stop waiting for in-flight reports.
	// Connecting ends at -d at the latest; without -warmup, so does issuing.
	issueCtx, stopIssuing := context.WithCancel(context.Background())
	defer stopIssuing()
	dialCtx, dialDone := context.WithTimeout(issueCtx, cfg.duration)
	defer dialDone()
	if cfg.warmup == 0 {
		issueCtx = dialCtx
		r.inWindow.Store(true)
	}
	abortCtx, abortReports := context.WithCancel(context.Background())
	defer abortReports()
	defer onSignals(stderr, func() { r.interrupted.Store(true); stopIssuing() }, abortReports)()

	start := time.Now()
	r.start = start
	if cfg.timeline != "" {
		r.tl = newTimeline(cfg.duration+cfg.warmup+cfg.drainTimeout, cfg.timelineStep)
	}
	var dispatcher sync.WaitGroup
	quit := make(chan struct{}) // the dispatcher exits
	if cfg.rate > 0 {
		r.paced = true
		r.waitKick = make(chan struct{}, 1)
		dispatcher.Go(func() { r.dispatch(start, issueCtx.Done(), quit) })
	}
	progDone := make(chan struct{})
	progStop := make(chan struct{})
	go func() { defer close(progDone); r.progress(start, progStop) }()

	// Connect, 64 at a time; each client starts its slots as soon as it is up.
	var dialers sync.WaitGroup
	dialSem := make(chan struct{}, dialConcurrency)
	for i := range cfg.clients {
		select {
		case dialSem <- struct{}{}:
		case <-dialCtx.Done():
		}
		if dialCtx.Err() != nil {
			if !r.interrupted.Load() { // -d passed before every client could even start connecting
				r.connectErrs.Add(uint64(cfg.clients - i))
			}
			break
		}
		dialers.Go(func() {
			defer func() { <-dialSem }()
			r.startClient(dialCtx, i)
		})
	}
	dialers.Wait()

	var steady window
	if cfg.warmup > 0 {
		if dialCtx.Err() == nil {
			steady = measureWindow(issueCtx, r.cfg, r.stderr, &r.inWindow, r.ackedNow)
		}
		stopIssuing()
	}
	<-issueCtx.Done()
	r.stopping.Store(true)
	r.endSlot() // runLoad's reference: from here on, drained closes when the last slot ends
	t := time.NewTimer(cfg.drainTimeout)
	select {
	case <-r.drained:
	case <-t.C:
		fmt.Fprintf(stderr, "load: reports still in flight after %v: giving up on them\n", cfg.drainTimeout)
		r.giveUp()
	case <-abortCtx.Done():
		r.giveUp()
	}
	t.Stop()
	elapsed := time.Since(start)
	close(progStop)
	<-progDone
	close(quit)
	dispatcher.Wait()

	var sum summary
	var closers sync.WaitGroup
	for _, lc := range r.clients {
		if lc == nil {
			continue
		}
		st := lc.c.Stats()
		sum.Sent += st.Sent
		sum.Nacked += st.Nacked
		sum.Resent += st.Resent
		sum.Reconnects += st.Reconnects
		sum.Goaways += st.Goaways
		sum.DialFailures += st.DialFailures
		sum.TLSResumed += st.TLSResumed
		closers.Go(func() { lc.c.Close() })
	}
	// Close returns once every done callback has run: the counts are final after it.
	closers.Wait()
	var gaveUp uint64
	for _, lc := range r.clients {
		if lc != nil {
			for j := range lc.slots {
				s := &lc.slots[j]
				sum.Acked += s.acked
				gaveUp += s.issued - s.handled
			}
			if lc.ab != nil {
				r.flushAcks(lc.ab, true) // this client's last lines
			}
		}
	}
	if r.logW != nil {
		if err := r.logW.Flush(); err != nil {
			return summary{}, fmt.Errorf("writing %s: %w", cfg.ackedLog, err)
		}
	}
	if r.tl != nil {
		r.tl.window = steady
		if err := writeTimeline(r.tl, cfg.timeline); err != nil {
			return summary{}, err
		}
	}
	sum.Clients, sum.Window, sum.Size = cfg.clients, cfg.window, cfg.size
	if gaveUp > 0 {
		r.errs.Add(gaveUp)
		r.showError(fmt.Sprintf("%d reports", gaveUp), errGaveUp)
	}
	sum.Errors = r.errs.Load()
	sum.ConnectErrors = r.connectErrs.Load()
	sum.finish(elapsed, steady, r.hists[:])
	sum.Busy, sum.BusyAfterGoaway = r.storm.busy.Load(), r.storm.busyStorm.Load()
	peak, move := r.storm.result()
	sum.ReconnectPeakPerS, sum.MoveS = peak, move.Seconds()
	return sum, nil
}

// startClient dials client i (retrying until the run ends) and starts its slots.
func (r *loadRun) startClient(dialCtx context.Context, i int) {
	id := r.cfg.idPrefix + "-" + strconv.Itoa(i)
	opts := client.Options{Addr: r.cfg.addr, ClientID: id, Token: r.cfg.token, TLS: r.cfg.tls, MaxInFlight: r.cfg.window,
		ClientVersion: "hawk-client-load/" + version, OnEvent: r.storm.onEvent(r.start), PerReportAcks: r.cfg.perReportAcks}
	if r.cfg.srcSpread {
		if addr, ok := loopback4(r.cfg.addr); ok {
			opts.Addr = addr
			opts.Dialer = spreadDialer(i)
		}
	}
	c, err := client.Dial(dialCtx, opts) // waits out ERROR busy itself; OnEvent counts it
	if err != nil {
		if r.interrupted.Load() && errors.Is(err, context.Canceled) {
			return // the operator stopped the run; not a failure to connect
		}
		r.connectErrs.Add(1)
		r.showError(fmt.Sprintf("connecting %s", id), err)
		return
	}
	lc := &loadClient{r: r, c: c, id: id, hist: &r.hists[i%histShards], slots: make([]slot, r.cfg.window)}
	if r.logW != nil {
		lc.ab = &ackBuf{}
	}
	for j := range lc.slots {
		s := &lc.slots[j]
		s.lc = lc
		s.done = s.finished
		s.skip = j % r.cfg.latencyEvery
	}
	r.cmu.Lock()
	r.clients[i] = lc
	r.cmu.Unlock()
	r.connected.Add(1)
	// Still during dialing (before runLoad drops its reference): active cannot
	// have reached 0 yet.
	r.active.Add(int64(len(lc.slots)))
	for j := range lc.slots {
		r.next(&lc.slots[j])
	}
}

// finished is a slot's done callback, called by the client's reader goroutine:
// it records the outcome and issues the slot's next report.
func (s *slot) finished(seq uint64, err error) {
	lc := s.lc
	r := lc.r
	if r.gaveUp.Load() {
		return // the drain gave up on this report: it counts as an error
	}
	s.handled++
	if err != nil {
		r.errs.Add(1)
		r.showError("report from "+lc.id, err)
		var ne *client.NackError
		if !errors.As(err, &ne) {
			r.endSlot() // closed, or refused for good: every later report would fail too
			return
		}
		// That report was refused; the client works.
	} else {
		if s.measured {
			// The monotonic clock alone: time.Now reads the wall clock too.
			now := mono.Now()
			if r.inWindow.Load() {
				lc.hist.record(time.Duration(now - s.t0))
			}
			if r.tl != nil {
				r.tl.record(now, time.Duration(now-s.t0))
			}
		}
		s.acked++
		if ab := lc.ab; ab != nil {
			ab.mu.Lock()
			ab.buf = append(ab.buf, lc.id...)
			ab.buf = append(ab.buf, ' ')
			ab.buf = strconv.AppendUint(ab.buf, seq, 10)
			ab.buf = append(ab.buf, '\n')
			full := len(ab.buf) >= ackBufFlush
			ab.mu.Unlock()
			if full {
				r.flushAcks(ab, false)
			}
		}
	}
	r.next(s)
}

// next issues s's next report, hands s to the dispatcher to wait for its turn
// under -rate, or ends s when the run is stopping. Never blocks.
func (r *loadRun) next(s *slot) {
	switch {
	case r.stopping.Load():
		r.endSlot()
	case r.paced:
		r.waitMu.Lock()
		r.waitq = append(r.waitq, s)
		r.waitMu.Unlock()
		select {
		case r.waitKick <- struct{}{}:
		default:
		}
	default:
		r.issue(s)
	}
}

// issue sends s's next report. Go does not block: a slot issues only once its
// previous report is done, and a client has as many slots as its window.
func (r *loadRun) issue(s *slot) {
	if s.measured = s.measureNext(r.cfg.latencyEvery); s.measured {
		s.t0 = mono.Now()
	}
	s.issued++
	if err := s.lc.c.Go(r.payload, s.done); err != nil {
		s.issued-- // done will not be called
		r.errs.Add(1)
		r.showError("report from "+s.lc.id, err)
		r.endSlot()
	}
}

// measureNext says whether the report s issues now is measured: one in every.
func (s *slot) measureNext(every int) bool {
	if s.skip > 0 {
		s.skip--
		return false
	}
	s.skip = every - 1
	return true
}

// endSlot marks one slot (or runLoad's own reference) as ended.
func (r *loadRun) endSlot() {
	if r.active.Add(-1) == 0 {
		close(r.drained)
	}
}

// giveUp makes the done callbacks of the reports still in flight, if they ever
// come, ignored: the summary counts those reports as errors.
func (r *loadRun) giveUp() {
	r.gaveUp.Store(true)
}

// paceEvery is how often the dispatcher adds to what -rate lets it issue.
const paceEvery = 5 * time.Millisecond

// dispatch issues the slots waiting for their turn, in arrival order, as fast as
// -rate allows, until quit; once stop is closed it ends them instead. Every
// paceEvery it may issue rate x (time since start) less what it was given
// before, holding at most 20 ms of -rate for slots yet to come: what nobody
// waited for is dropped, so the rate never exceeds -rate, even after a stall.
// It counts rather than passing a token per report through a channel: at
// 150,000 reports/s the tokens' channel operations and wake-ups cost the load
// generator more than the reports' own work.
func (r *loadRun) dispatch(start time.Time, stop, quit <-chan struct{}) {
	t := time.NewTicker(paceEvery)
	defer t.Stop()
	p := pacer{rate: r.cfg.rate, hold: max(1, int64(r.cfg.rate/50))}
	var batch []*slot
	stopped := false
	for {
		r.waitMu.Lock()
		n := len(r.waitq)
		if !stopped {
			n = int(min(int64(n), p.budget))
		}
		batch = append(batch[:0], r.waitq[:n]...)
		clear(r.waitq[:n])
		r.waitq = r.waitq[n:]
		r.waitMu.Unlock()
		for i, s := range batch {
			batch[i] = nil
			if stopped {
				r.endSlot()
			} else {
				r.issue(s)
			}
		}
		if !stopped {
			p.budget -= int64(n)
		}
		// Woken by a slot's arrival only while it can be issued at once: with
		// nothing left to give, arrivals wait for the next tick without waking this.
		var kick <-chan struct{}
		if p.budget > 0 || stopped {
			kick = r.waitKick
		}
		tick := t.C
		if stopped {
			tick = nil
		}
		select {
		case <-tick:
			// The clock, not the tick's time value: under load a tick's value can
			// lag its firing by more than a period (go.dev/issue/80893), so that the
			// next tick carries an earlier time.
			p.add(time.Since(start))
		case <-kick:
		case <-stop:
			stopped, stop = true, nil
		case <-quit:
			return
		}
	}
}

// pacer is what -rate lets the dispatcher issue: budget, at most hold, grows by
// rate x the time since the start less what it was given before.
type pacer struct {
	rate          float64
	hold          int64
	given, budget int64 // budget >= 0: the dispatcher issues at most budget slots
}

// add gives what rate allows up to elapsed since the start. An elapsed time below
// an earlier one gives nothing rather than taking back: a negative budget would
// be a negative count of slots to issue.
func (p *pacer) add(elapsed time.Duration) {
	due := max(0, int64(p.rate*elapsed.Seconds())-p.given)
	p.given += due
	p.budget = min(p.hold, p.budget+due)
}

func (r *loadRun) flushAcks(ab *ackBuf, final bool) {
	ab.mu.Lock()
	if !final && len(ab.buf) < ackBufFlush {
		ab.mu.Unlock()
		return
	}
	r.logMu.Lock()
	r.logW.Write(ab.buf) // errors stick in the bufio.Writer and surface at Flush
	r.logMu.Unlock()
	ab.buf = ab.buf[:0]
	ab.mu.Unlock()
}

func (r *loadRun) showError(what string, err error) {
	r.errorsShownMu.Lock()
	defer r.errorsShownMu.Unlock()
	if r.errorsShown < maxErrorsShown {
		fmt.Fprintf(r.stderr, "load: %s: %v\n", what, err)
	} else if r.errorsShown == maxErrorsShown {
		fmt.Fprintf(r.stderr, "load: more errors; counting them without printing\n")
	}
	r.errorsShown++
}

// progress prints one line a second on stderr.
func (r *loadRun) progress(start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastAcked uint64
	last := start
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			now := time.Now() // not the tick's value, which can lag (dispatch)
			var inflight int
			var acked, reconnects, goaways uint64
			r.cmu.Lock()
			for _, lc := range r.clients {
				if lc != nil {
					st := lc.c.Stats()
					inflight += st.InFlight
					reconnects += st.Reconnects
					goaways += st.Goaways
					acked += st.Acked
				}
			}
			r.cmu.Unlock()
			rate := float64(acked-lastAcked) / now.Sub(last).Seconds()
			lastAcked, last = acked, now
			fmt.Fprintf(r.stderr, "load: t=%.0fs connected=%d/%d acked/s=%.0f acked=%d in_flight=%d errors=%d reconnects=%d goaways=%d\n",
				now.Sub(start).Seconds(), r.connected.Load(), r.cfg.clients, rate, acked, inflight, r.errs.Load()+r.connectErrs.Load(), reconnects, goaways)
		}
	}
}

// loopback4 reports whether addr targets IPv4 loopback, rewriting "localhost" to
// 127.0.0.1 so a 127.0.0.x source address can reach it.
func loopback4(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, false
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), true
	}
	ip := net.ParseIP(host)
	return addr, ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// spreadDialer binds client i's connections to source address 127.0.0.(2+(i/250)%200),
// 250 clients per address, so many thousands of connections do not exhaust one
// source address's ephemeral ports and look like many hosts to the server.
// On Linux the socket gets IP_BIND_ADDRESS_NO_PORT before the bind (see
// bindNoPort), so the kernel chooses the port at connect() time by 4-tuple
// instead of bind() searching for a port free for any destination, which stalls
// once a source address has thousands of TIME_WAIT sockets.
func spreadDialer(i int) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+(i/250)%200))},
		Control:   bindNoPort,
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}
}

// lockedWriter serializes writes from the progress, error and signal goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
