package metrics

import (
	"time"

	"github.com/hawk-agents/hawk/internal/jetstream"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// JetStream registers the JetStream destination's metrics (only when it is the
// destination, so a spool server's scrape does not carry them) and returns its
// observer. Call it once.
func (m *Metrics) JetStream() jetstream.Observer {
	f := factory{m.Registry}
	return &jetStreamObserver{
		m:       m,
		publish: f.histogram("hawk_jetstream_publish_seconds", "Time from a batch's Submit to JetStream's acknowledgement of all its reports."),
		pending: f.gauge("hawk_jetstream_pending", "Publishes awaiting JetStream's acknowledgement (at most hawk_jetstream_publish_window, or one batch)."),
		window: f.gauge("hawk_jetstream_publish_window", "The most publishes that may await JetStream's acknowledgement now: jetstream.max_pending, "+
			"or less while acknowledgements take longer than half of jetstream.publish_timeout."),
		acked:     f.counter("hawk_jetstream_acked_total", "Reports JetStream acknowledged (duplicates included)."),
		errors:    f.counter("hawk_jetstream_publish_errors_total", "Reports whose publish failed or timed out: NACKed destination_unavailable (retryable)."),
		dups:      f.counter("hawk_jetstream_duplicates_total", "Reports JetStream acknowledged as duplicates (Nats-Msg-Id seen within the duplicate window): resends stored once."),
		connected: f.gauge("hawk_jetstream_connected", "1 while the NATS connection is up."),
		reconns:   f.counter("hawk_jetstream_disconnects_total", "Times the NATS connection went down."),
	}
}

type jetStreamObserver struct {
	m                            *Metrics
	publish                      *promtext.Histogram
	pending, window, connected   *promtext.Gauge
	acked, errors, dups, reconns *promtext.Counter
}

func (o *jetStreamObserver) Acked(n, dups int, d time.Duration) {
	o.publish.Observe(d.Seconds())
	o.acked.Add(float64(n))
	o.dups.Add(float64(dups))
	// hawk_ack_latency_seconds measures the destination whichever it is.
	o.m.Spool().AckLatency(d, n)
}

func (o *jetStreamObserver) Failed(n int) { o.errors.Add(float64(n)) }
func (o *jetStreamObserver) Pending(n, window int) {
	o.pending.Set(float64(n))
	o.window.Set(float64(window))
}
func (o *jetStreamObserver) Connected(up bool) {
	if up {
		o.connected.Set(1)
		return
	}
	o.connected.Set(0)
	o.reconns.Inc()
}
