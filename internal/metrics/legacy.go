package metrics

import (
	"github.com/hawk-agents/hawk/internal/legacy"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// legacyVecs are the legacy listeners' metrics, labelled by listener name.
type legacyVecs struct {
	accepted  *promtext.CounterVec
	refused   *promtext.CounterVec
	closed    *promtext.CounterVec
	frames    *promtext.CounterVec
	dropped   *promtext.CounterVec
	receipts  *promtext.CounterVec
	stored    *promtext.CounterVec
	notStored *promtext.CounterVec
}

func newLegacyVecs(f factory) legacyVecs {
	return legacyVecs{
		accepted:  f.counterVec("hawk_legacy_connections_accepted_total", "Connections accepted by a legacy listener.", "listener"),
		refused:   f.counterVec("hawk_legacy_connections_refused_total", "Connections closed at accept by a legacy listener, by reason (not_allowed: the source is outside allow).", "listener", "reason"),
		closed:    f.counterVec("hawk_legacy_connections_closed_total", "Legacy connections closed, by reason (client, idle_timeout, write_timeout, slow_consumer, not_allowed, drain; handoff, handoff_lost: moved to the new process after an upgrade).", "listener", "reason"),
		frames:    f.counterVec("hawk_legacy_frames_received_total", "Frames received on a legacy listener, by kind (report, heartbeat).", "listener", "kind"),
		dropped:   f.counterVec("hawk_legacy_frames_dropped_total", "Frames (or runs of junk) a legacy listener dropped without a reply, by reason (sync, too_large, trailer, crc, envelope, packet_type).", "listener", "reason"),
		receipts:  f.counterVec("hawk_legacy_receipts_sent_total", "Receipts sent for stored reports (ffff lines, c8c9 results with status 200); headers has none.", "listener"),
		stored:    f.counterVec("hawk_legacy_reports_stored_total", "Reports from a legacy listener written to the spool.", "listener"),
		notStored: f.counterVec("hawk_legacy_reports_not_stored_total", "Reports from a legacy listener whose spool write failed (ffff: no receipt; c8c9: status 503).", "listener"),
	}
}

// Legacy returns the legacy.Observer of the listener called name, its counters
// pre-bound, and count, the listener's connection count, reported on scrape.
func (m *Metrics) Legacy(name string, count func() int) legacy.Observer {
	v := &m.legacy
	o := &legacyObserver{
		accepted: v.accepted.WithLabelValues(name), refused: v.refused.WithLabelValues(name, legacy.RefusedNotAllowed),
		receipts: v.receipts.WithLabelValues(name), stored: v.stored.WithLabelValues(name), notStored: v.notStored.WithLabelValues(name),
		report: v.frames.WithLabelValues(name, legacy.FrameReport), heartbeat: v.frames.WithLabelValues(name, legacy.FrameHeartbeat),
		closed: map[legacy.CloseReason]*promtext.Counter{}, dropped: map[string]*promtext.Counter{},
		bytesIn: m.bytesIn, bytesOut: m.bytesOut,
	}
	for _, r := range legacy.CloseReasons {
		o.closed[r] = v.closed.WithLabelValues(name, string(r))
	}
	for _, r := range legacy.DropReasons {
		o.dropped[r] = v.dropped.WithLabelValues(name, r)
	}
	// hawk_legacy_connections: a gauge function per listener, read on scrape.
	m.Registry.GaugeFunc("hawk_legacy_connections", "Connections open now on a legacy listener.",
		func() float64 { return float64(count()) }, "listener", name)
	return o
}

type legacyObserver struct {
	accepted, refused, receipts, stored, notStored, report, heartbeat, bytesIn, bytesOut *promtext.Counter
	closed                                                                               map[legacy.CloseReason]*promtext.Counter
	dropped                                                                              map[string]*promtext.Counter
}

func (o *legacyObserver) Accepted()       { o.accepted.Inc() }
func (o *legacyObserver) Refused(string)  { o.refused.Inc() }
func (o *legacyObserver) Receipts(n int)  { o.receipts.Add(float64(n)) }
func (o *legacyObserver) Stored(n int)    { o.stored.Add(float64(n)) }
func (o *legacyObserver) NotStored(n int) { o.notStored.Add(float64(n)) }
func (o *legacyObserver) BytesIn(n int)   { o.bytesIn.Add(float64(n)) }
func (o *legacyObserver) BytesOut(n int)  { o.bytesOut.Add(float64(n)) }

func (o *legacyObserver) Closed(r legacy.CloseReason) {
	if c, ok := o.closed[r]; ok {
		c.Inc()
	}
}

func (o *legacyObserver) Frames(kind string, n int) {
	if kind == legacy.FrameHeartbeat {
		o.heartbeat.Add(float64(n))
		return
	}
	o.report.Add(float64(n))
}

func (o *legacyObserver) Dropped(reason string, n int) {
	if c, ok := o.dropped[reason]; ok {
		c.Add(float64(n))
	}
}
