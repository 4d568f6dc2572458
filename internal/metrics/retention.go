package metrics

import (
	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/spool"
)

// RetentionObserver implements spool.RetentionObserver.
type RetentionObserver struct {
	bytes, segments, diskFree, diskSize *promtext.Gauge
	removed, removedBytes               *promtext.CounterVec
	discarded, refusedFull              *promtext.Counter
}

// SpoolRetention returns the spool.RetentionObserver that feeds m.
func (m *Metrics) SpoolRetention() *RetentionObserver { return m.retention }

// newRetentionObserver registers the spool's retention metrics.
func newRetentionObserver(f factory) *RetentionObserver {
	o := &RetentionObserver{
		bytes:    f.gauge("hawk_spool_bytes", "Bytes in the spool directory's segments, of every process sharing it, after the last retention pass."),
		segments: f.gauge("hawk_spool_segments", "Segments in the spool directory after the last retention pass."),
		diskFree: f.gauge("hawk_spool_disk_free_bytes", "Bytes available to hawk on the spool directory's file system (statfs, every 5s and after each rotation)."),
		diskSize: f.gauge("hawk_spool_disk_size_bytes", "Size of the spool directory's file system."),
		removed: f.counterVec("hawk_spool_segments_removed_total",
			"Closed segments removed by retention, by reason: bytes (over spool.max_bytes), age (last written longer ago than spool.max_age), "+
				"discarded (over spool.max_bytes before it was forwarded, spool.discard: old).", "reason"),
		removedBytes: f.counterVec("hawk_spool_removed_bytes_total", "Bytes of the segments removed by retention, by reason.", "reason"),
		discarded: f.counter("hawk_spool_discarded_records_total",
			"Records removed by retention before the forwarder sent them (spool.discard: old): they never reach the stream."),
		refusedFull: f.counter("hawk_spool_full_refused_records_total",
			"Records refused (NACKed spool_write_failed, retryable, with retry_after_ms) because segments not yet forwarded "+
				"filled spool.max_bytes (jetstream.mode: spooled, spool.discard: new)."),
	}
	for _, r := range []string{spool.RemovedForBytes, spool.RemovedForAge, spool.RemovedDiscarded} {
		o.removed.WithLabelValues(r)
		o.removedBytes.WithLabelValues(r)
	}
	return o
}

// Retained sets the gauges from a retention pass.
func (o *RetentionObserver) Retained(st spool.RetentionStats) {
	o.bytes.Set(float64(st.Bytes))
	o.segments.Set(float64(st.Segments))
	o.diskFree.Set(float64(st.DiskFree))
	o.diskSize.Set(float64(st.DiskSize))
}

// SegmentRemoved counts a segment retention removed.
func (o *RetentionObserver) SegmentRemoved(_ string, bytes int64, reason string) {
	o.removed.WithLabelValues(reason).Inc()
	o.removedBytes.WithLabelValues(reason).Add(float64(bytes))
}

// Discarded counts records retention removed before they were forwarded.
func (o *RetentionObserver) Discarded(records int64) { o.discarded.Add(float64(records)) }

// RefusedFull counts records refused at the spool's hard limit.
func (o *RetentionObserver) RefusedFull(records int) { o.refusedFull.Add(float64(records)) }
