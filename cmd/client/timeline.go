package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// timeline is the ack latencies of a run by the time of their ACK, in buckets of
// step, so that a tail can be placed in time (next to a server's log
// lines: scripts/upgrade-phases.py). Each bucket is a histogram of its own; a
// report acknowledged past the last bucket counts in the last.
type timeline struct {
	wall  time.Time // the start of bucket 0
	start int64     // mono.Now() at wall
	step  time.Duration
	hists []histogram
	// With -warmup, the steady window, written as a comment line so that a reader
	// can leave connection set-up and the warm-up out as the summary does.
	window window
}

// newTimeline covers span in buckets of step (each a histogram of ~11 KB).
func newTimeline(span, step time.Duration) *timeline {
	n := int(span/step) + 1
	return &timeline{wall: time.Now(), start: mono.Now(), step: step, hists: make([]histogram, n)}
}

func (t *timeline) record(now int64, d time.Duration) {
	i := int((now - t.start) / int64(t.step))
	i = min(max(i, 0), len(t.hists)-1)
	t.hists[i].record(d)
}

// write prints one line per bucket up to the last that holds an ACK: the bucket's
// start (Unix ms), its ACKs, p50, p99 and max in µs, then its histogram as
// "index:count" pairs (histogram buckets, bucketRange) separated by commas, for
// quantiles over any set of buckets. With a steady window, a line
// "# window_unix_ms FROM TO" precedes the buckets.
func (t *timeline) write(w io.Writer) error {
	last := -1
	for i := range t.hists {
		if t.hists[i].total() > 0 {
			last = i
		}
	}
	bw := bufio.NewWriter(w)
	if w := t.window; !w.from.IsZero() {
		fmt.Fprintf(bw, "# window_unix_ms %d %d\n", w.from.UnixMilli(), w.to.UnixMilli())
	}
	fmt.Fprintln(bw, "# unix_ms acked p50_us p99_us max_us hist(index:count,...)")
	for i := 0; i <= last; i++ {
		h := &t.hists[i]
		ms := t.wall.Add(time.Duration(i) * t.step).UnixMilli()
		fmt.Fprintf(bw, "%d %d %d %d %d ", ms, h.total(), h.quantile(0.5), h.quantile(0.99), h.max.Load())
		sep := ""
		for j := range h.counts {
			if n := h.counts[j].Load(); n != 0 {
				bw.WriteString(sep)
				bw.WriteString(strconv.Itoa(j))
				bw.WriteByte(':')
				bw.WriteString(strconv.FormatUint(n, 10))
				sep = ","
			}
		}
		if sep == "" {
			bw.WriteByte('-')
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeTimeline writes t to path.
func writeTimeline(t *timeline, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
