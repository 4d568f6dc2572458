package metrics

import (
	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/spool"
)

// RetentionObserver implements spool.RetentionObserver.
type RetentionObserver struct {
	bytes, segments, diskFree, diskSize *promtext.Gauge
	removed, removedBytes               *promtext.CounterVec
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
			"Closed segments removed by retention, by reason: bytes (over spool.max_bytes), age (last written longer ago than spool.max_age).", "reason"),
		removedBytes: f.counterVec("hawk_spool_removed_bytes_total", "Bytes of the segments removed by retention, by reason.", "reason"),
	}
	for _, r := range []string{spool.RemovedForBytes, spool.RemovedForAge} {
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
