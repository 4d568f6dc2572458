package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram is an HDR-style log-linear histogram of durations in microseconds:
// exact below 128µs, then 64 linear sub-buckets per power of two, so a bucket is at
// most 1/64 (1.6%) wide relative to its values. Values above 60s are clamped. It is
// safe for concurrent use (atomic counters); the load generator shards it to keep
// cache-line contention low.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64 // µs, exact
}

const (
	subBits   = 6
	subCount  = 1 << subBits // 64
	histMaxUS = 60_000_000   // 60s
	// 60s = 6e7µs has 26 bits, so the largest shift is 26-subBits-1 = 19.
	maxShift   = 19
	numBuckets = 2*subCount + maxShift*subCount // 1344
)

func bucketOf(us int64) int {
	if us < 0 {
		us = 0
	}
	if us > histMaxUS {
		us = histMaxUS
	}
	v := uint64(us)
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [64, 128)
	return 2*subCount + (shift-1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	j := i - 2*subCount
	shift := j/subCount + 1
	m := int64(j%subCount + subCount)
	return m << shift, (m+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	us := d.Microseconds()
	h.counts[bucketOf(us)].Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// merge adds o's counts into h (not concurrently with records into o).
func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n != 0 {
			h.counts[i].Add(n)
		}
	}
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

func (h *histogram) total() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile returns the value at quantile q (0..1) in µs: the highest value of the
// bucket holding it (never above the exact maximum), 0 when empty.
func (h *histogram) quantile(q float64) int64 {
	total := h.total()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank < 1 {
		rank = 1
	}
	if rank > total {
		rank = total
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(hi, h.max.Load())
		}
	}
	return h.max.Load()
}
