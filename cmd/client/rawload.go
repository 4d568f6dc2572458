package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// load -raw measures the server as ../shared/bench's load measures the limit
// reference: one goroutine per connection writes the wire format itself
// (PROTOCOL.md), and for every report acknowledged it writes one more, all of a
// read's in one write. It keeps no record per report, so it has nothing to resend:
// a NACK is an error, a GOAWAY stops the connection's new reports, an ERROR ends
// the connection; there is no reconnection and no pacing. On two cores the load
// generator's CPU is taken from the server's; the client library's (records for
// resends, callbacks, reconnection) is what an agent pays, not what a throughput
// figure beside the reference's should.

// rawRun is the state of one load -raw run.
type rawRun struct {
	cfg      loadConfig
	payload  []byte
	hists    [histShards]histogram
	inWindow atomic.Bool // ACK latencies count (the steady window, or the whole run without -warmup)
	stopping atomic.Bool // no new reports
	conns    []*rawConn  // nil where not connected
	connErrs atomic.Uint64
}

// rawConn is one connection of a raw run, served by its own goroutine.
type rawConn struct {
	r      *rawRun
	nc     net.Conn
	hist   *histogram
	window int    // reports kept in flight: -w, or less if WELCOME says so
	next   uint64 // the seq of the next report
	// sentAt is the mono time each measured report in flight was written, by seq
	// modulo its length; at[i] is that seq, so an old slot is never taken for it.
	sentAt []int64
	at     []uint64
	rbuf   []byte
	rlen   int
	wbuf   []byte

	acked                       atomic.Uint64 // read by the steady window
	inflight                    int
	sent, nacked, errs, goaways uint64 // read once the goroutine has ended
	ended                       error  // why it stopped early (ERROR, a broken connection)
	goaway                      bool   // told GOAWAY: no new reports, those in flight are still answered
}

func runRawLoad(cfg loadConfig, stderr io.Writer) (summary, error) {
	stderr = &lockedWriter{w: stderr}
	r := &rawRun{cfg: cfg, conns: make([]*rawConn, cfg.clients)}
	r.payload = loadPayload(cfg.size)
	// First signal: stop issuing. Second: stop waiting for the reports in flight.
	ctx, stopIssuing := context.WithCancel(context.Background())
	defer stopIssuing()
	abortCtx, abort := context.WithCancel(context.Background())
	defer abort()
	defer onSignals(stderr, stopIssuing, abort)()
	start := time.Now()

	dialCtx, dialDone := context.WithTimeout(ctx, cfg.duration)
	defer dialDone()
	var dialers sync.WaitGroup
	sem := make(chan struct{}, dialConcurrency)
	for i := range cfg.clients {
		sem <- struct{}{}
		dialers.Go(func() {
			defer func() { <-sem }()
			c, err := r.connect(dialCtx, i)
			if err != nil {
				if r.connErrs.Add(1) <= maxErrorsShown {
					fmt.Fprintf(stderr, "load: connecting %s-%d: %v\n", cfg.idPrefix, i, err)
				}
				return
			}
			r.conns[i] = c
		})
	}
	dialers.Wait()
	if n := r.connErrs.Load(); n == uint64(cfg.clients) {
		return summary{}, fmt.Errorf("none of the %d connections could be set up", n)
	}

	var running sync.WaitGroup
	for _, c := range r.conns {
		if c != nil {
			running.Go(c.run)
		}
	}
	var steady window
	if cfg.warmup > 0 {
		steady = measureWindow(ctx, cfg, stderr, &r.inWindow, r.ackedNow)
	} else {
		r.inWindow.Store(true)
		sleepCtx(ctx, cfg.duration)
	}
	r.stopping.Store(true)
	// Each connection ends once its reports in flight are answered; past the drain
	// timeout (or at a second signal) its read is cut short, and what was in flight
	// is an error.
	finished := make(chan struct{})
	go func() { running.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(cfg.drainTimeout):
		fmt.Fprintf(stderr, "load: reports still in flight after %v: giving up on them\n", cfg.drainTimeout)
	case <-abortCtx.Done():
	}
	select {
	case <-finished:
	default:
		for _, c := range r.conns {
			if c != nil {
				c.nc.SetReadDeadline(time.Now())
			}
		}
		<-finished
	}
	elapsed := time.Since(start)

	sum := summary{Clients: cfg.clients, Window: cfg.window, Size: cfg.size}
	shown := 0
	for _, c := range r.conns {
		if c == nil {
			continue
		}
		c.nc.Close()
		sum.Sent += c.sent
		sum.Acked += c.acked.Load()
		sum.Nacked += c.nacked
		sum.Goaways += c.goaways
		sum.Errors += c.errs
		if c.ended != nil && shown < maxErrorsShown {
			shown++
			fmt.Fprintf(stderr, "load: a connection ended early: %v\n", c.ended)
		}
	}
	sum.ConnectErrors = r.connErrs.Load()
	sum.finish(elapsed, steady, r.hists[:])
	return sum, nil
}

func (r *rawRun) ackedNow() uint64 {
	var n uint64
	for _, c := range r.conns {
		if c != nil {
			n += c.acked.Load()
		}
	}
	return n
}

// connect dials connection i and says HELLO, asking for range acknowledgements
// unless -per-report-acks; it returns once WELCOME came.
func (r *rawRun) connect(ctx context.Context, i int) (*rawConn, error) {
	id := r.cfg.idPrefix + "-" + strconv.Itoa(i)
	var nc net.Conn
	var err error
	if addr, ok := loopback4(r.cfg.addr); ok && r.cfg.srcSpread {
		nc, err = spreadDialer(i)(ctx, addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", r.cfg.addr)
	}
	if err != nil {
		return nil, err
	}
	hello := protocol.Hello{ClientID: id, Token: r.cfg.token, ClientVersion: "hawk-client-load-raw/" + version}
	if !r.cfg.perReportAcks {
		hello.Ack = protocol.AckModeRange
	}
	c := &rawConn{r: r, nc: nc, hist: &r.hists[i%histShards], window: r.cfg.window, rbuf: make([]byte, 16<<10),
		next: uint64(time.Now().UnixNano())} // above any seq an earlier run of this id used
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if _, err := nc.Write(protocol.AppendJSON(nil, protocol.TypeHello, 0, hello)); err != nil {
		nc.Close()
		return nil, err
	}
	f, err := c.readFrame()
	if err == nil {
		err = c.welcome(f)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	n := 1
	for n < 2*c.window {
		n <<= 1
	}
	c.sentAt, c.at = make([]int64, n), make([]uint64, n)
	c.wbuf = make([]byte, 0, c.window*protocol.FrameSize(len(r.payload)))
	return c, nil
}

// welcome takes the server's answer to HELLO.
func (c *rawConn) welcome(f protocol.Frame) error {
	switch f.Type {
	case protocol.TypeWelcome:
		var w protocol.Welcome
		if err := protocol.ParseJSON(f, &w); err != nil {
			return err
		}
		if w.MaxInFlight > 0 && w.MaxInFlight < c.window {
			c.window = w.MaxInFlight
		}
		return nil
	case protocol.TypeError:
		var e protocol.ErrorPayload
		if err := protocol.ParseJSON(f, &e); err != nil {
			return err
		}
		return &e
	}
	return fmt.Errorf("%s before WELCOME", f.Type)
}

// readFrame reads until one whole frame is buffered and takes it out (the
// handshake only: the loop in run parses every frame of a read in place).
func (c *rawConn) readFrame() (protocol.Frame, error) {
	for {
		f, n, err := protocol.Decode(c.rbuf[:c.rlen], protocol.MaxServerPayload)
		if err != nil {
			return f, err
		}
		if n > 0 {
			f.Payload = append([]byte(nil), f.Payload...)
			c.rlen = copy(c.rbuf, c.rbuf[n:c.rlen])
			return f, nil
		}
		if err := c.read(); err != nil {
			return f, err
		}
	}
}

// read reads what the socket has after what is buffered.
func (c *rawConn) read() error {
	c.makeRoom()
	m, err := c.nc.Read(c.rbuf[c.rlen:])
	c.rlen += m
	return err
}

// run keeps the window full until the run stops, then waits for the reports in
// flight.
func (c *rawConn) run() {
	c.send(c.window)
	if c.inflight > 0 && c.ended == nil {
		c.readLoop()
	}
	c.errs += uint64(c.inflight) // unanswered: the connection ended under them
}

// readLoopPortable is readLoop where a socket's descriptor cannot be read directly.
func (c *rawConn) readLoopPortable() {
	for c.inflight > 0 && c.ended == nil {
		if err := c.read(); err != nil {
			c.end(err)
			return
		}
		c.handle()
	}
}

// makeRoom doubles the read buffer when a frame larger than it fills it.
func (c *rawConn) makeRoom() {
	if c.rlen == len(c.rbuf) {
		c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...)
	}
}

// handle answers what a read brought: the frames, then as many new reports as
// they answered.
func (c *rawConn) handle() {
	done := c.parse()
	if c.ended == nil && !c.goaway && !c.r.stopping.Load() {
		c.send(done)
	}
}

// parse handles every whole frame read and returns how many reports they answered.
func (c *rawConn) parse() (done int) {
	off := 0
	now := int64(0)
	for c.ended == nil {
		f, n, err := protocol.Decode(c.rbuf[off:c.rlen], protocol.MaxServerPayload)
		if err != nil {
			c.end(err)
			break
		}
		if n == 0 {
			break
		}
		off += n
		switch f.Type {
		case protocol.TypeAckRange:
			rs, err := protocol.ParseAckRanges(f.Payload)
			if err != nil {
				c.end(err)
				break
			}
			for i := range rs.Len() {
				first, last := rs.At(i)
				done += c.acks(first, last, &now)
			}
		case protocol.TypeAck:
			done += c.acks(f.Seq, f.Seq, &now)
		case protocol.TypeNack:
			c.nacked++
			c.errs++
			done++
		case protocol.TypeGoaway:
			c.goaways++
			c.goaway = true // load -raw does not reconnect
		case protocol.TypeError:
			var e protocol.ErrorPayload
			if protocol.ParseJSON(f, &e) != nil {
				e.Message = "unreadable ERROR"
			}
			c.end(&e)
		case protocol.TypePing:
			c.wbuf = protocol.AppendFrame(c.wbuf[:0], protocol.TypePong, f.Seq, nil)
			if _, err := c.nc.Write(c.wbuf); err != nil {
				c.end(err)
			}
		}
	}
	c.rlen = copy(c.rbuf, c.rbuf[off:c.rlen])
	c.inflight -= done
	return done
}

// acks counts the reports first..last acknowledged, recording the latency of the
// measured ones (-latency-every) while the window counts.
func (c *rawConn) acks(first, last uint64, now *int64) int {
	n := int(last - first + 1)
	c.acked.Add(uint64(n))
	if !c.r.inWindow.Load() {
		return n
	}
	every := uint64(c.r.cfg.latencyEvery)
	mask := uint64(len(c.at) - 1)
	for s := first + (every-first%every)%every; s <= last && s >= first; s += every {
		if i := s & mask; c.at[i] == s {
			if *now == 0 {
				*now = mono.Now()
			}
			c.hist.record(time.Duration(*now - c.sentAt[i]))
		}
	}
	return n
}

// send writes n new reports in one write.
func (c *rawConn) send(n int) {
	if n <= 0 {
		return
	}
	c.wbuf = c.wbuf[:0]
	now := mono.Now()
	every := uint64(c.r.cfg.latencyEvery)
	mask := uint64(len(c.at) - 1)
	for range n {
		s := c.next
		c.next++
		if s%every == 0 {
			c.at[s&mask], c.sentAt[s&mask] = s, now
		}
		c.wbuf = protocol.AppendFrame(c.wbuf, protocol.TypeReport, s, c.r.payload)
	}
	if _, err := c.nc.Write(c.wbuf); err != nil {
		c.end(err)
		return
	}
	c.sent += uint64(n)
	c.inflight += n
}

func (c *rawConn) end(err error) {
	if c.ended == nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errGaveUp
		}
		c.ended = err
	}
}
