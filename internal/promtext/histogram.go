package promtext

import (
	"math"
	"sort"
	"sync/atomic"
)

// Histogram counts observations into buckets by upper bound (le).
type Histogram struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is past every bound
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
}

// Observe records one observation of v.
func (h *Histogram) Observe(v float64) { h.ObserveN(v, 1) }

// ObserveN records n observations of v at once.
func (h *Histogram) ObserveN(v float64, n int) {
	if n <= 0 {
		return
	}
	h.counts[sort.SearchFloat64s(h.upper, v)].Add(uint64(n))
	addFloat(&h.sum, v*float64(n))
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// write derives the cumulative buckets, +Inf and _count from the same loads, so a
// scrape during observations is still consistent.
func (h *Histogram) write(b []byte, f *family, pairs string) []byte {
	var cum uint64
	for i, le := range h.upper {
		cum += h.counts[i].Load()
		b = appendSample(b, f.name, "_bucket", pairs, "le", le, float64(cum))
	}
	cum += h.counts[len(h.upper)].Load()
	b = appendSample(b, f.name, "_bucket", pairs, "le", math.Inf(+1), float64(cum))
	b = appendSample(b, f.name, "_sum", pairs, "", 0, math.Float64frombits(h.sum.Load()))
	return appendSample(b, f.name, "_count", pairs, "", 0, float64(cum))
}

// ExponentialBuckets returns count upper bounds, start and each factor times the last.
func ExponentialBuckets(start, factor float64, count int) []float64 {
	b := make([]float64, count)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// Summary is a summary's state read at a scrape: its quantiles (quantile, value) in
// ascending order, the sum and the count of the observations.
type Summary struct {
	Quantiles [][2]float64
	Sum       float64
	Count     uint64
}

type summaryFunc func() Summary

func (fn summaryFunc) write(b []byte, f *family, pairs string) []byte {
	s := fn()
	for _, q := range s.Quantiles {
		b = appendSample(b, f.name, "", pairs, "quantile", q[0], q[1])
	}
	b = appendSample(b, f.name, "_sum", pairs, "", 0, s.Sum)
	return appendSample(b, f.name, "_count", pairs, "", 0, float64(s.Count))
}
