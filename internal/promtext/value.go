package promtext

import (
	"math"
	"sync/atomic"
	"time"
)

// Counter only goes up. Whole increments (every count) are one atomic add.
type Counter struct {
	whole atomic.Uint64
	frac  atomic.Uint64 // float64 bits of the increments that were not whole
}

// Inc adds one.
func (c *Counter) Inc() { c.whole.Add(1) }

// Add adds v, which must not be negative.
func (c *Counter) Add(v float64) {
	if v < 0 {
		panic("promtext: a counter cannot decrease")
	}
	if u := uint64(v); float64(u) == v {
		c.whole.Add(u)
		return
	}
	addFloat(&c.frac, v)
}

// Value is the counter's value.
func (c *Counter) Value() float64 {
	return float64(c.whole.Load()) + math.Float64frombits(c.frac.Load())
}

func (c *Counter) write(b []byte, f *family, pairs string) []byte {
	return appendSample(b, f.name, "", pairs, "", 0, c.Value())
}

// Gauge is a value set at will.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// SetToCurrentTime sets the gauge to the Unix time in seconds.
func (g *Gauge) SetToCurrentTime() { g.Set(float64(time.Now().UnixNano()) / 1e9) }

// Value is the gauge's value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) write(b []byte, f *family, pairs string) []byte {
	return appendSample(b, f.name, "", pairs, "", 0, g.Value())
}

// funcValue is a counter or gauge read from fn at each scrape.
type funcValue func() float64

func (fn funcValue) write(b []byte, f *family, pairs string) []byte {
	return appendSample(b, f.name, "", pairs, "", 0, fn())
}

func addFloat(bits *atomic.Uint64, v float64) {
	for {
		old := bits.Load()
		if bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}
