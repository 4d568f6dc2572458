package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/protocol"
)

const (
	dialConcurrency = 64 // connections being set up at once
	histShards      = 64
	maxErrorsShown  = 5
)

type loadConfig struct {
	addr, idPrefix, token, ackedLog string
	clients, window, size           int
	duration, drainTimeout          time.Duration
	rate                            float64
	json, srcSpread                 bool
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
	AckedPerS     float64 `json:"acked_per_s"`
	LatencyP50US  int64   `json:"latency_p50_us"`
	LatencyP90US  int64   `json:"latency_p90_us"`
	LatencyP99US  int64   `json:"latency_p99_us"`
	LatencyMaxUS  int64   `json:"latency_max_us"`
}

func cmdLoad(args []string, stdout, stderr io.Writer) int {
	var cfg loadConfig
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "server address `host:port`")
	fs.IntVar(&cfg.clients, "c", 1000, "number of clients (connections)")
	fs.IntVar(&cfg.window, "w", 8, "reports in flight per client (its window, kept full)")
	fs.IntVar(&cfg.size, "s", 256, "payload size in bytes")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "how long to issue reports")
	fs.Float64Var(&cfg.rate, "rate", 0, "total reports per second over all clients; 0 = as fast as acks allow")
	fs.StringVar(&cfg.idPrefix, "id-prefix", "load", "client ids are `PREFIX`-0 … PREFIX-(c-1)")
	fs.StringVar(&cfg.token, "token", "", "auth token")
	fs.BoolVar(&cfg.json, "json", false, "print the summary as one JSON object")
	fs.StringVar(&cfg.ackedLog, "acked-log", "", "write to `FILE` one line \"client_id seq\" per acked report (flushed at exit)")
	fs.BoolVar(&cfg.srcSpread, "src-spread", true, "spread source addresses over 127.0.0.2-201 when the target is IPv4 loopback")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 10*time.Second, "at the end, how long to wait for reports in flight before giving up on them (they count as errors)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: client load [flags]

Runs c clients (ids PREFIX-0 … PREFIX-(c-1)); each keeps w reports in flight with
w goroutines calling Report in a loop. Connections are set up 64 at a time. Every
second a progress line goes to stderr. At -d (or on SIGINT/SIGTERM) no new reports
are issued, the ones in flight are waited for (at most -drain-timeout; a second
signal stops waiting), the clients are closed and a summary is printed on stdout:
sent, acked, nacked, resent, errors, connect_errors, reconnects, goaways,
dial_failures, acked_per_s, ack latency p50/p90/p99/max (µs, from the Report call
to its return).

  acked        reports whose Report returned nil (the lines of -acked-log)
  nacked       NACK frames received (retryable ones too; they are retried)
  errors       Report calls that returned an error (a non-retryable NACK, a
               report still unacked at the drain timeout, a refused reconnect)
  connect_errors  clients that could not connect before -d ended (not those
               a signal stopped while connecting)
  acked_per_s  acked / elapsed, elapsed being from the start to the end of the drain

Exit status: 0 if every Report succeeded and every client connected; 1 if any
Report returned an error (errors > 0) or a client never connected
(connect_errors > 0); 2 on bad usage.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 || cfg.clients < 1 || cfg.window < 1 || cfg.size < 0 || cfg.size > protocol.MaxPayloadLimit || cfg.duration <= 0 || cfg.rate < 0 {
		fs.Usage()
		return 2
	}
	sum, err := runLoad(cfg, stderr)
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
	tokens  chan struct{} // rate limit; nil = unlimited

	stopping      atomic.Bool // no new reports
	interrupted   atomic.Bool // stopped by a signal, not by -d
	acked         atomic.Uint64
	errs          atomic.Uint64
	connectErrs   atomic.Uint64
	connected     atomic.Int64
	errorsShownMu sync.Mutex
	errorsShown   int

	logMu sync.Mutex // the acked log file
	logW  *bufio.Writer

	cmu     sync.Mutex
	clients []*client.Client // nil where not (yet) connected
}

// ackBuf buffers one client's acked-log lines; its workers share it.
type ackBuf struct {
	mu  sync.Mutex
	buf []byte
}

const ackBufFlush = 16 << 10

func runLoad(cfg loadConfig, stderr io.Writer) (summary, error) {
	stderr = &lockedWriter{w: stderr}
	r := &loadRun{cfg: cfg, stderr: stderr, clients: make([]*client.Client, cfg.clients)}
	// A JSON string of exactly cfg.size bytes (any payload is opaque to hawk; valid
	// JSON keeps spool files readable).
	r.payload = make([]byte, cfg.size)
	for i := range r.payload {
		r.payload[i] = 'x'
	}
	if cfg.size >= 2 {
		r.payload[0], r.payload[cfg.size-1] = '"', '"'
	}
	if cfg.ackedLog != "" {
		f, err := os.Create(cfg.ackedLog)
		if err != nil {
			return summary{}, err
		}
		defer f.Close()
		r.logW = bufio.NewWriterSize(f, 256<<10)
	}

	// First signal: stop issuing (graceful). Second: stop waiting for in-flight reports.
	issueCtx, stopIssuing := context.WithTimeout(context.Background(), cfg.duration)
	defer stopIssuing()
	reportCtx, abortReports := context.WithCancel(context.Background())
	defer abortReports()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	sigDone := make(chan struct{})
	defer close(sigDone)
	go func() {
		n := 0
		for {
			select {
			case s := <-sigs:
				n++
				if n == 1 {
					fmt.Fprintf(stderr, "load: %v: stopping (again to stop waiting for reports in flight)\n", s)
					r.interrupted.Store(true)
					stopIssuing()
				} else {
					abortReports()
				}
			case <-sigDone:
				return
			}
		}
	}()

	start := time.Now()
	if cfg.rate > 0 {
		r.tokens = make(chan struct{}, max(1, int(cfg.rate/50)))
		go r.pace(issueCtx, start)
	}
	progDone := make(chan struct{})
	progStop := make(chan struct{})
	go func() { defer close(progDone); r.progress(start, progStop) }()

	// Connect, 64 at a time; each client starts its workers as soon as it is up.
	var workers, dialers sync.WaitGroup
	dialSem := make(chan struct{}, dialConcurrency)
	for i := range cfg.clients {
		select {
		case dialSem <- struct{}{}:
		case <-issueCtx.Done():
		}
		if issueCtx.Err() != nil {
			if !r.interrupted.Load() { // -d passed before every client could even start connecting
				r.connectErrs.Add(uint64(cfg.clients - i))
			}
			break
		}
		dialers.Go(func() {
			defer func() { <-dialSem }()
			r.startClient(issueCtx, reportCtx, i, &workers)
		})
	}
	dialers.Wait()

	<-issueCtx.Done()
	r.stopping.Store(true)
	drained := make(chan struct{})
	go func() { workers.Wait(); close(drained) }()
	t := time.NewTimer(cfg.drainTimeout)
	select {
	case <-drained:
	case <-t.C:
		fmt.Fprintf(stderr, "load: reports still in flight after %v: giving up on them\n", cfg.drainTimeout)
		abortReports()
	case <-reportCtx.Done():
	}
	t.Stop()
	<-drained
	elapsed := time.Since(start)
	close(progStop)
	<-progDone

	var sum summary
	var closers sync.WaitGroup
	for _, c := range r.clients {
		if c == nil {
			continue
		}
		st := c.Stats()
		sum.Sent += st.Sent
		sum.Nacked += st.Nacked
		sum.Resent += st.Resent
		sum.Reconnects += st.Reconnects
		sum.Goaways += st.Goaways
		sum.DialFailures += st.DialFailures
		closers.Go(func() { c.Close() })
	}
	closers.Wait()
	if r.logW != nil {
		if err := r.logW.Flush(); err != nil {
			return summary{}, fmt.Errorf("writing %s: %w", cfg.ackedLog, err)
		}
	}
	var h histogram
	for i := range r.hists {
		h.merge(&r.hists[i])
	}
	sum.Clients, sum.Window, sum.Size = cfg.clients, cfg.window, cfg.size
	sum.ElapsedS = elapsed.Seconds()
	sum.Acked = r.acked.Load()
	sum.Errors = r.errs.Load()
	sum.ConnectErrors = r.connectErrs.Load()
	sum.AckedPerS = float64(sum.Acked) / elapsed.Seconds()
	sum.LatencyP50US, sum.LatencyP90US, sum.LatencyP99US = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	sum.LatencyMaxUS = h.max.Load()
	return sum, nil
}

// startClient dials client i (retrying until the run ends) and starts its workers.
func (r *loadRun) startClient(issueCtx, reportCtx context.Context, i int, workers *sync.WaitGroup) {
	id := r.cfg.idPrefix + "-" + strconv.Itoa(i)
	opts := client.Options{Addr: r.cfg.addr, ClientID: id, Token: r.cfg.token, MaxInFlight: r.cfg.window,
		ClientVersion: "hawk-client-load/" + version}
	if r.cfg.srcSpread {
		if addr, ok := loopback4(r.cfg.addr); ok {
			opts.Addr = addr
			opts.Dialer = spreadDialer(i)
		}
	}
	c, err := client.Dial(issueCtx, opts)
	if err != nil {
		if r.interrupted.Load() && errors.Is(err, context.Canceled) {
			return // the operator stopped the run; not a failure to connect
		}
		r.connectErrs.Add(1)
		r.showError(fmt.Sprintf("connecting %s", id), err)
		return
	}
	r.cmu.Lock()
	r.clients[i] = c
	r.cmu.Unlock()
	r.connected.Add(1)
	var ab *ackBuf
	if r.logW != nil {
		ab = &ackBuf{}
	}
	var cw sync.WaitGroup // this client's workers
	for range r.cfg.window {
		cw.Go(func() { r.worker(issueCtx.Done(), reportCtx, c, id, &r.hists[i%histShards], ab) })
	}
	workers.Go(func() {
		cw.Wait()
		if ab != nil {
			r.flushAcks(ab, true) // this client's last lines
		}
	})
}

// worker keeps one report in flight until the run stops.
func (r *loadRun) worker(stop <-chan struct{}, ctx context.Context, c *client.Client, id string, h *histogram, ab *ackBuf) {
	for !r.stopping.Load() {
		if r.tokens != nil {
			select {
			case <-r.tokens:
			case <-stop:
				return
			}
			if r.stopping.Load() {
				return
			}
		}
		t0 := time.Now()
		seq, err := c.Report(ctx, r.payload)
		if err != nil {
			r.errs.Add(1)
			r.showError("report from "+id, err)
			var ne *client.NackError
			if errors.As(err, &ne) {
				continue // that report was refused; the client works
			}
			return // closed, aborted, or refused for good: every later call would fail too
		}
		h.record(time.Since(t0))
		r.acked.Add(1)
		if ab != nil {
			ab.mu.Lock()
			ab.buf = append(ab.buf, id...)
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

// pace hands out rate tokens every 5ms; tokens nobody took are dropped, so the
// rate never exceeds -rate, even after a stall.
func (r *loadRun) pace(ctx context.Context, start time.Time) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var issued int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int64(r.cfg.rate*time.Since(start).Seconds()) - issued
		for ; due > 0; due-- {
			select {
			case r.tokens <- struct{}{}:
			default:
			}
			issued++
		}
	}
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
		case now := <-t.C:
			var inflight int
			var reconnects, goaways uint64
			r.cmu.Lock()
			for _, c := range r.clients {
				if c != nil {
					st := c.Stats()
					inflight += st.InFlight
					reconnects += st.Reconnects
					goaways += st.Goaways
				}
			}
			r.cmu.Unlock()
			acked := r.acked.Load()
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
func spreadDialer(i int) func(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+(i/250)%200))}}
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
