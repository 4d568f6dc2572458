package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/legacy/ffffwire"
	"github.com/hawk-agents/hawk/internal/legacy/formats"
)

// legacySummary is what legacy-load prints at the end (-json: as one object).
type legacySummary struct {
	Format       string  `json:"format"`
	Clients      int     `json:"clients"`
	Window       int     `json:"window"`
	Size         int     `json:"size"`
	ElapsedS     float64 `json:"elapsed_s"`
	Sent         uint64  `json:"sent"`
	Receipts     uint64  `json:"receipts"`
	Errors       uint64  `json:"errors"`
	DialFailures uint64  `json:"dial_failures"`
	ReceiptsPerS float64 `json:"receipts_per_s"`
	LatencyP50US int64   `json:"latency_p50_us"`
	LatencyP99US int64   `json:"latency_p99_us"`
	LatencyMaxUS int64   `json:"latency_max_us"`
}

// cmdLegacyLoad drives a legacy ffff listener the way the metrics agents do: one
// connection per agent, reports written as frames, receipt lines read back. Each
// connection keeps -w reports in flight (a report is in flight from its write until
// its receipt line; ffff receipts come in report order, so the n-th line answers the
// n-th report). The server's allow list must admit the source addresses
// (127.0.0.0/8 with -src-spread on loopback).
func cmdLegacyLoad(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("legacy-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7380", "legacy listener `host:port`")
	format := fs.String("format", "ffff", "wire format (ffff)")
	clients := fs.Int("c", 1000, "connections (agents)")
	window := fs.Int("w", 8, "reports in flight per connection")
	size := fs.Int("s", 256, "inner report JSON size in bytes (approximate)")
	duration := fs.Duration("d", 10*time.Second, "how long to send reports")
	srcSpread := fs.Bool("src-spread", true, "spread source addresses over 127.0.0.2-201 when the target is IPv4 loopback")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *format != formats.FFFF || *clients < 1 || *window < 1 || *size < 64 {
		fmt.Fprintln(stderr, "legacy-load: -format ffff (the only one measured so far), -c ≥ 1, -w ≥ 1, -s ≥ 64")
		return 2
	}
	target, loop := loopback4(*addr)
	spread := *srcSpread && loop

	content := fmt.Appendf(nil, `{"content":"%s","rand":123,"timestamp":1700000000}`, strings.Repeat("x", max(*size-50, 1)))
	frame := ffffwire.AppendPacket(nil, ffffwire.Report, content)

	var sent, receipts, errs, dialFails atomic.Uint64
	var hist histogram
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *clients {
		wg.Go(func() {
			var nc net.Conn
			var err error
			if spread {
				nc, err = spreadDialer(i)(ctx, target)
			} else {
				nc, err = (&net.Dialer{}).DialContext(ctx, "tcp", target)
			}
			if err != nil {
				dialFails.Add(1)
				return
			}
			defer nc.Close()
			inflight := make(chan time.Time, *window) // send times, in report order
			done := make(chan struct{})
			go func() { // the reader: one receipt line per report, in order
				defer close(done)
				rd := bufio.NewReader(nc)
				for {
					line, err := rd.ReadSlice('\n')
					if err != nil {
						return
					}
					if string(line) != ffffwire.ReportReply {
						continue // a heartbeat's line
					}
					t0 := <-inflight
					hist.record(time.Since(t0))
					receipts.Add(1)
				}
			}()
			// Frames whose window slots free up together go out in one write: the
			// bytes on the wire are the same as from the agents' goroutines writing one
			// frame each (TCP is a stream), without a syscall per frame here, which on
			// a shared machine would measure the load generator instead of the server.
			buf := make([]byte, 0, *window*len(frame))
			for ctx.Err() == nil {
				select {
				case inflight <- time.Now():
				case <-ctx.Done():
					continue
				case <-done:
					errs.Add(1)
					return
				}
				buf = append(buf[:0], frame...)
			fill:
				for len(buf) < cap(buf) {
					select {
					case inflight <- time.Now():
						buf = append(buf, frame...)
					default:
						break fill
					}
				}
				if _, err := nc.Write(buf); err != nil {
					errs.Add(1)
					return
				}
				sent.Add(uint64(len(buf) / len(frame)))
			}
			// Wait (briefly) for the receipts of what is in flight, then close.
			deadline := time.Now().Add(5 * time.Second)
			for len(inflight) > 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			nc.Close()
			<-done
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	s := legacySummary{Format: *format, Clients: *clients, Window: *window, Size: len(content), ElapsedS: elapsed.Seconds(),
		Sent: sent.Load(), Receipts: receipts.Load(), Errors: errs.Load(), DialFailures: dialFails.Load(),
		ReceiptsPerS: float64(receipts.Load()) / duration.Seconds(),
		LatencyP50US: hist.quantile(0.5), LatencyP99US: hist.quantile(0.99), LatencyMaxUS: hist.max.Load()}
	if *asJSON {
		b, _ := json.Marshal(s)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "format %s: %d connections x %d in flight x %d B: sent %d, receipts %d (%.0f/s), errors %d, dial failures %d, latency p50 %dµs p99 %dµs max %dµs\n",
			s.Format, s.Clients, s.Window, s.Size, s.Sent, s.Receipts, s.ReceiptsPerS, s.Errors, s.DialFailures, s.LatencyP50US, s.LatencyP99US, s.LatencyMaxUS)
	}
	if s.Errors > 0 || s.DialFailures > 0 {
		return 1
	}
	return 0
}
