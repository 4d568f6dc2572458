package metrics

import (
	"time"

	"github.com/hawk-agents/hawk/internal/objstore"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// ObjStore registers the metrics of the actor that puts finished files into the
// Object Store bucket (only with destination: jetstream and uploads.bucket) and
// returns its observer. Call it once.
func (m *Metrics) ObjStore() objstore.Observer {
	f := factory{m.Registry}
	o := &objstoreObserver{
		files:        f.counter("hawk_upload_bucket_files_total", "Finished files put into the Object Store bucket and announced (found there already after a crash included)."),
		bytes:        f.counter("hawk_upload_bucket_bytes_total", "Bytes of the files put into the Object Store bucket."),
		failures:     map[string]*promtext.Counter{},
		backlog:      f.gauge("hawk_upload_bucket_backlog_files", "Finished files waiting in uploads.dir to be put into the Object Store bucket."),
		backlogBytes: f.gauge("hawk_upload_bucket_backlog_bytes", "Bytes of the files waiting to be put into the Object Store bucket."),
		backlogAge:   f.gauge("hawk_upload_bucket_backlog_seconds", "How long ago the oldest file waiting for the Object Store bucket was published; 0 when none waits."),
	}
	v := f.counterVec("hawk_upload_bucket_failures_total", "Attempts to put a finished file into the Object Store bucket that failed, by reason "+
		"(unavailable, not_durable, conflict, digest, read, announce); the file stays in uploads.dir and is tried again.", "reason")
	for _, r := range objstore.Reasons {
		o.failures[r] = v.WithLabelValues(r)
	}
	return o
}

type objstoreObserver struct {
	files, bytes                      *promtext.Counter
	failures                          map[string]*promtext.Counter
	backlog, backlogBytes, backlogAge *promtext.Gauge
}

func (o *objstoreObserver) Placed(size int64, _ bool) {
	o.files.Inc()
	o.bytes.Add(float64(size))
}

func (o *objstoreObserver) Failed(reason string) {
	if c := o.failures[reason]; c != nil {
		c.Inc()
	}
}

func (o *objstoreObserver) Backlog(files int, bytes int64, oldest time.Duration) {
	o.backlog.Set(float64(files))
	o.backlogBytes.Set(float64(bytes))
	o.backlogAge.Set(oldest.Seconds())
}
