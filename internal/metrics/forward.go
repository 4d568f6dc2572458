package metrics

import (
	"time"

	"github.com/hawk-agents/hawk/internal/forward"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// Forward registers the JetStream forwarder's metrics (only with jetstream.mode:
// spooled) and returns its observer. Call it once.
func (m *Metrics) Forward() forward.Observer {
	f := factory{m.Registry}
	return &forwardObserver{
		forwarded: f.counter("hawk_forward_records_total", "Spool records the forwarder published and JetStream acknowledged (duplicates included)."),
		dups:      f.counter("hawk_forward_duplicates_total", "Forwarded records JetStream acknowledged as duplicates (already in the stream: a resend, or a republish after a crash)."),
		errors:    f.counter("hawk_forward_errors_total", "Publishes of the forwarder that failed (NATS down, no acknowledgement for jetstream.publish_timeout, stream refused); the records not acknowledged are published again."),
		lagRecs:   f.gauge("hawk_forward_lag_records", "Records in the spool not yet forwarded to JetStream (of every process sharing the spool directory)."),
		lagSecs:   f.gauge("hawk_forward_lag_seconds", "How long ago the oldest record not yet forwarded was received; 0 when all are forwarded."),
	}
}

type forwardObserver struct {
	forwarded, dups, errors *promtext.Counter
	lagRecs, lagSecs        *promtext.Gauge
}

func (o *forwardObserver) Forwarded(n, dups int) {
	o.forwarded.Add(float64(n))
	o.dups.Add(float64(dups))
}

func (o *forwardObserver) Failed(error) { o.errors.Inc() }

func (o *forwardObserver) Lag(records int64, age time.Duration) {
	o.lagRecs.Set(float64(records))
	o.lagSecs.Set(age.Seconds())
}
