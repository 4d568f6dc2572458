package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/promtext/promtexttest"
)

func TestDedupFamilies(t *testing.T) {
	m := New("v-test", func() int { return 0 })
	tb, err := dedup.New(dedup.Options{Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	m.Dedup(tb)
	c := tb.Attach("a")
	c.Check(1, nil)
	c.Committed([]uint64{1}, nil)
	c.Check(1, nil) // a resend of a durable report
	tb.Detach(c)
	mfs, err := promtexttest.Gather(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if s.Counter != nil {
				got[mf.GetName()] = s.GetCounter().GetValue()
			} else if s.Gauge != nil {
				got[mf.GetName()] = s.GetGauge().GetValue()
			}
		}
	}
	if got["hawk_reports_duplicate_total"] != 1 || got["hawk_dedup_clients"] != 1 || got["hawk_dedup_clients_evicted_total"] != 0 {
		t.Fatalf("duplicate %v, clients %v, evicted %v; want 1, 1, 0", got["hawk_reports_duplicate_total"], got["hawk_dedup_clients"], got["hawk_dedup_clients_evicted_total"])
	}
	problems, err := testutil.GatherAndLint(promtexttest.Gatherer(m.Registry))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
