package metrics

import (
	"time"

	"github.com/hawk-agents/hawk/internal/handoff"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// Handoff is the metrics of connection handoff after an upgrade (internal/handoff):
// the old process counts what it moved and what fell back, the new one what it
// adopted or rejected.
type Handoff struct {
	conns    *promtext.CounterVec
	duration *promtext.Gauge
}

// Handoff registers the handoff metrics; call it once.
func (m *Metrics) Handoff() *Handoff {
	return &Handoff{
		conns: m.Registry.CounterVec("hawk_handoff_connections_total",
			"Connections at an upgrade's handoff, by result (moved, fallback, lost: sent to a new process that died before acknowledging; adopted, rejected: in the new process) and reason.",
			"result", "reason"),
		duration: m.Registry.Gauge("hawk_handoff_duration_seconds",
			"How long the last handoff into or out of this process took, from the first connection asked to the last one moved or fallen back."),
	}
}

// Add counts n connections with this result and reason.
func (h *Handoff) Add(result, reason string, n int) {
	if h == nil || n == 0 {
		return
	}
	h.conns.WithLabelValues(result, reason).Add(float64(n))
}

// Took records a handoff's duration.
func (h *Handoff) Took(d time.Duration) {
	if h != nil {
		h.duration.Set(d.Seconds())
	}
}

// Count records what a handoff did: in the old process, and in the new one from the
// summary the old one sent, since the old one exits before anyone scrapes it.
func (h *Handoff) Count(s *handoff.Summary) {
	h.Add("moved", "", s.Moved)
	h.Add("lost", "unacknowledged", s.Lost)
	for r, n := range s.Fallback {
		h.Add("fallback", r, n)
	}
	h.Took(s.Duration)
}
