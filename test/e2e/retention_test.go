package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/spool"
)

// spoolSize is the bytes in dir's segments now (a segment removed while it is
// listed counts for nothing).
func spoolSize(dir string) int64 {
	segs, _ := spool.Segments(dir)
	var total int64
	for _, g := range segs {
		if fi, err := os.Stat(filepath.Join(dir, g.Name)); err == nil {
			total += fi.Size()
		}
	}
	return total
}

// peakSampler follows the largest spoolSize of a directory, every 2 ms, until stop.
type peakSampler struct {
	peak    atomic.Int64
	cancel  context.CancelFunc
	sampled chan struct{}
}

func samplePeak(dir string) *peakSampler {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peakSampler{cancel: cancel, sampled: make(chan struct{})}
	go func() {
		defer close(p.sampled)
		for ctx.Err() == nil {
			if n := spoolSize(dir); n > p.peak.Load() {
				p.peak.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return p
}

// stop ends the sampling (safe to call twice).
func (p *peakSampler) stop() { p.cancel(); <-p.sampled }

// Load is the largest size seen.
func (p *peakSampler) Load() int64 { return p.peak.Load() }

// TestSpoolRetentionUnderLoad: with 4 MiB segments and a 64 MiB limit, 1 GiB flows
// through under load, half of it after an upgrade; the spool never
// holds more than the limit plus two segments (the one being written and the
// upgrading parent's), clients see nothing, and what is left holds no duplicate.
func TestSpoolRetentionUnderLoad(t *testing.T) {
	const seg, limit = 4 << 20, 64 << 20
	// A batch is written whole before the rotation check, so a segment ends up
	// to one group commit past its size; under this load one is well below 1 MiB.
	const bound = limit + 2*seg + 2<<20
	s := startServer(t, bin.serverV1, "-spool.segment_size=4MiB", "-spool.max_bytes=64MiB")
	admin := s.adminAddr()

	peak := samplePeak(s.spool)
	defer peak.stop()

	load := startLoad(t, s.addr(), "-c", "100", "-w", "8", "-s", "1024", "-d", "10m")
	written := func() float64 { return metric(t, admin, "hawk_spool_written_bytes_total") }
	waitWritten := func(n float64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for written() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%.0f bytes written after 90s, want %.0f", written(), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitWritten(512 << 20)
	s.upgradeTo(bin.serverV2) // the new process starts its counters afresh
	admin = s.adminAddr()
	waitWritten(512 << 20)
	sum := load.stop()
	peak.stop()

	removed := metric(t, admin, `hawk_spool_removed_bytes_total{reason="bytes"}`)
	t.Logf("summary %+v; peak spool %d bytes (limit %d, bound %d); removed by the new process %.0f bytes",
		sum, peak.Load(), limit, bound, removed)
	if sum.Errors != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent || sum.Acked == 0 {
		t.Fatalf("clients noticed: %+v\nload stderr:\n%s", sum, load.stderr)
	}
	if p := peak.Load(); p > bound {
		t.Errorf("the spool held %d bytes, more than the limit %d plus two segments (%d)", p, limit, bound)
	}
	if removed < 512<<20-limit-2*seg {
		t.Errorf("the new process removed %.0f bytes of the 512 MiB it wrote", removed)
	}
	if got := metric(t, admin, "hawk_spool_bytes"); got <= 0 || got > bound {
		t.Errorf("hawk_spool_bytes %.0f, want in (0, %d]", got, bound)
	}
	if free := metric(t, admin, "hawk_spool_disk_free_bytes"); free <= 0 {
		t.Errorf("hawk_spool_disk_free_bytes %.0f", free)
	}
	// What retention left: acked reports only, each once (dedup unaffected).
	acked := load.acked()
	s.stopAll()
	left := spoolRecords(t, s.spool)
	if len(left) == 0 {
		t.Fatal("the spool is empty")
	}
	for k, n := range left {
		if n != 1 || acked[k] == 0 {
			t.Fatalf("the spool holds %q %d times, acked %d times", k, n, acked[k])
		}
	}
}
