// Package promtexttest reads a promtext registry back through Prometheus's own text parser, for tests.
package promtexttest

import (
	"bytes"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hawk-agents/hawk/internal/promtext"
)

// Gather writes r and parses the text as a Prometheus server would, families sorted by name.
func Gather(r *promtext.Registry) ([]*dto.MetricFamily, error) {
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// Gatherer is r as a prometheus.Gatherer, for client_golang's testutil (GatherAndLint,
// GatherAndCompare, GatherAndCount).
func Gatherer(r *promtext.Registry) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return Gather(r) })
}
