package promtext

// Counter registers a counter without labels.
func (r *Registry) Counter(name, help string) *Counter {
	return r.child(r.family(name, help, "counter", nil, nil), nil, func() sample { return new(Counter) }, false).(*Counter)
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(name, help string) *Gauge {
	return r.child(r.family(name, help, "gauge", nil, nil), nil, func() sample { return new(Gauge) }, false).(*Gauge)
}

// Histogram registers a histogram without labels, with these bucket upper bounds
// (ascending; +Inf is implied).
func (r *Registry) Histogram(name, help string, buckets []float64) *Histogram {
	return r.child(r.family(name, help, "histogram", nil, buckets), nil, func() sample { return newHistogram(buckets) }, false).(*Histogram)
}

// GaugeFunc registers a gauge read from fn at each scrape; labelPairs are constant
// labels as name, value, name, value...
func (r *Registry) GaugeFunc(name, help string, fn func() float64, labelPairs ...string) {
	r.funcSeries(name, help, "gauge", funcValue(fn), labelPairs)
}

// CounterFunc registers a counter read from fn at each scrape; labelPairs as GaugeFunc's.
func (r *Registry) CounterFunc(name, help string, fn func() float64, labelPairs ...string) {
	r.funcSeries(name, help, "counter", funcValue(fn), labelPairs)
}

// SummaryFunc registers a summary read from fn at each scrape.
func (r *Registry) SummaryFunc(name, help string, fn func() Summary) {
	r.funcSeries(name, help, "summary", summaryFunc(fn), nil)
}

func (r *Registry) funcSeries(name, help, kind string, s sample, labelPairs []string) {
	if len(labelPairs)%2 != 0 {
		panic("promtext: " + name + ": label pairs are name, value, ...")
	}
	var names, values []string
	for i := 0; i < len(labelPairs); i += 2 {
		names, values = append(names, labelPairs[i]), append(values, labelPairs[i+1])
	}
	r.child(r.family(name, help, kind, names, nil), values, func() sample { return s }, true)
}

// Vec is a family with variable labels whose series are M (*Counter, *Gauge).
type Vec[M sample] struct {
	r  *Registry
	f  *family
	mk func() sample
}

// CounterVec is a counter family with variable labels.
type CounterVec = Vec[*Counter]

// GaugeVec is a gauge family with variable labels.
type GaugeVec = Vec[*Gauge]

// CounterVec registers a counter family with these label names.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{r, r.family(name, help, "counter", labels, nil), func() sample { return new(Counter) }}
}

// GaugeVec registers a gauge family with these label names.
func (r *Registry) GaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{r, r.family(name, help, "gauge", labels, nil), func() sample { return new(Gauge) }}
}

// WithLabelValues returns the series of these label values (in the registered
// order), created at zero on first use: bind it once, off the hot path.
func (v *Vec[M]) WithLabelValues(values ...string) M {
	return v.r.child(v.f, values, v.mk, false).(M)
}
