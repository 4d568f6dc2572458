package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// window is the steady-state part of a run: the reports acked within it, its length
// and its bounds.
type window struct {
	acked    uint64
	secs     float64
	from, to time.Time
}

// measureWindow lets either generator issue for -warmup, then measures the -d
// window: what a load tool that excludes its warm-up counts (connection set-up and
// the first batches, while buffers and the server's pools grow, are left out), the
// ACKs and their latencies. inWindow is set while the window runs (its ACK
// latencies count); acked counts the reports acked so far. A signal ends the
// window early.
func measureWindow(ctx context.Context, cfg loadConfig, stderr io.Writer, inWindow *atomic.Bool, acked func() uint64) window {
	if !sleepCtx(ctx, cfg.warmup) {
		return window{}
	}
	a0, t0 := acked(), time.Now()
	inWindow.Store(true)
	fmt.Fprintf(stderr, "load: steady window begins (warm-up %v over)\n", cfg.warmup)
	sleepCtx(ctx, cfg.duration)
	inWindow.Store(false)
	t1 := time.Now()
	w := window{acked: acked() - a0, secs: t1.Sub(t0).Seconds(), from: t0, to: t1}
	fmt.Fprintf(stderr, "load: steady window ends: %d acked in %.2fs\n", w.acked, w.secs)
	return w
}

// ackedNow is the number of reports acked so far over every client (their Stats:
// no counter of its own per report).
func (r *loadRun) ackedNow() uint64 {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	var n uint64
	for _, lc := range r.clients {
		if lc != nil {
			n += lc.c.Stats().Acked
		}
	}
	return n
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
