package metrics

import (
	"github.com/hawk-agents/hawk/internal/dedup"
)

// Dedup exports the dedup table's counts, read on scrape.
func (m *Metrics) Dedup(t *dedup.Table) {
	f := factory{m.Registry}
	f.counterFunc("hawk_reports_duplicate_total", "Reports received again after a copy was already durable or pending: ACKed (or answered with the first copy's outcome) without being stored again.",
		func() float64 { return float64(t.Duplicates()) })
	f.counterFunc("hawk_dedup_clients_evicted_total", "Clients whose dedup windows were forgotten to stay within dedup.max_clients.",
		func() float64 { return float64(t.Evicted()) })
	f.gaugeFunc("hawk_dedup_clients", "Clients whose dedup windows are remembered.", func() float64 { return float64(t.Len()) })
}

func (f factory) counterFunc(name, help string, fn func() float64) {
	f.r.CounterFunc(name, help, fn)
}
