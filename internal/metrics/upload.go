package metrics

import (
	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/upload"
)

// Uploads registers the upload store's metrics (only when uploads are enabled)
// and returns its observer. Call it once.
func (m *Metrics) Uploads(clientQuota, totalQuota int64) upload.Observer {
	f := factory{m.Registry}
	started := f.counterVec("hawk_uploads_started_total", "Uploads opened: new ones (resumed=\"false\") and partial ones continued (resumed=\"true\").", "resumed")
	o := &uploadObserver{
		started:  started.WithLabelValues("false"),
		resumed:  started.WithLabelValues("true"),
		finished: f.counter("hawk_uploads_finished_total", "Uploads published: size and sha256 checked, the file in place."),
		failed:   f.counterVec("hawk_uploads_failed_total", "Upload frames refused, by the code of the answer (upload_offset, upload_quota, ...).", "reason"),
		bytes:    f.counter("hawk_upload_bytes_total", "Chunk bytes written to partial uploads."),
		partial:  f.gauge("hawk_upload_partial_bytes", "Bytes held in partial uploads."),
		held:     f.gauge("hawk_upload_bytes", "Bytes held in uploads, partial and published: usage against uploads.total_quota."),
	}
	f.gauge("hawk_upload_quota_bytes", "uploads.total_quota (0: no limit).").Set(float64(totalQuota))
	f.gauge("hawk_upload_client_quota_bytes", "uploads.client_quota (0: no limit).").Set(float64(clientQuota))
	return o
}

type uploadObserver struct {
	started, resumed, finished, bytes *promtext.Counter
	failed                            *promtext.CounterVec
	partial, held                     *promtext.Gauge
}

func (o *uploadObserver) UploadStarted(resumed bool) {
	if resumed {
		o.resumed.Inc()
	} else {
		o.started.Inc()
	}
}
func (o *uploadObserver) UploadFinished(int64) { o.finished.Inc() }
func (o *uploadObserver) UploadFailed(code protocol.Code) {
	o.failed.WithLabelValues(string(code)).Inc()
}
func (o *uploadObserver) UploadBytes(n int) { o.bytes.Add(float64(n)) }
func (o *uploadObserver) UploadUsage(partial, total int64) {
	o.partial.Set(float64(partial))
	o.held.Set(float64(total))
}
