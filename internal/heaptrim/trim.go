package heaptrim

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A burst of TLS handshakes (a reconnect storm, a fleet coming up) allocates
// several KiB of garbage per handshake: key shares, certificates, transcripts.
// The heap grows to twice what is live, and the runtime keeps those pages: its
// scavenger returns only what lies above 110% of the heap goal, so once the
// burst is over and the agents sit idle the process holds about as much free
// heap as live heap, for good (measured: about 5 KiB per idle TLS connection).
// A server whose connections then idle for hours has no use for it. The
// Trimmer waits for allocation to go quiet and the heap it could give back
// (free pages, and garbage not yet collected: the burst's own, until a
// collection runs) to be worth it, then runs debug.FreeOSMemory: one forced
// collection, then every free page returned. It is bounded: never while the
// process allocates, never more often than Interval, and never when GOGC=off or
// a memory limit (GOMEMLIMIT) is set, where the operator has chosen how the
// runtime keeps memory. On an idle server heartbeats make garbage: an idle
// TLS session rests between heartbeats and builds its AEADs again at each
// (internal/tlsrecord, Rest), 2.5 KiB per heartbeat, about a tenth of what the
// connection holds live per second at the default 10 s interval. That counts
// as quiet (allocation below 256 KiB/s and an eighth of the live heap per
// second), and a trim as soon as 8 MiB could be returned, every 5 s at the
// most, keeps what that garbage adds between trims near 2 KiB a connection at
// 5,000 idle TLS agents, and near a quarter of the live heap with more: a
// forced collection of an idle heap every few seconds instead of a heap left
// at its goal, twice what is live. A steady load allocates little too (a
// report allocates nothing): MinFree, which a small busy heap does not reach
// between its collections, is what keeps trims out of load runs (at 4 MiB, a
// third or more of 100-connection TLS load runs trimmed once).
//
// Between trims the heap still grows by GOGC percent of what is live before a
// collection reuses the garbage: at GOGC=100, 2 KiB more per idle TLS
// connection than right after a trim. So while allocation is quiet the Trimmer
// lowers GOGC to QuietGOGC, and gives the operator's back at the first tick
// that is not quiet: an idle heap then grows by a quarter of what is live, and
// its collections come no more often than every two seconds (quiet allocates
// at most an eighth of the live heap a second), each marking an idle heap.
// Under load GOGC is the operator's, but for the one tick it takes to see it.

// Trimmer is the actor that trims the heap.
type Trimmer struct {
	Log      *zap.Logger
	Tick     time.Duration // how often it looks; quiet means two whole Ticks quiet
	Interval time.Duration // the least time between two trims
	// MinFree is the least heap a trim must be able to return (free pages
	// held, and garbage); a trim also needs it to be a quarter of the live heap.
	MinFree uint64
	// QuietBytes is the most the process may allocate per second, beside 1/8
	// of its live heap per second, and still be quiet (heartbeats allocate).
	QuietBytes uint64
	// QuietGOGC is GOGC while allocation is quiet, when the operator's is
	// higher; 0 leaves GOGC alone.
	QuietGOGC int

	trims atomic.Int64
}

// New returns a Trimmer with the defaults: a look every second, at most one
// trim every 5 s, 8 MiB to return at least, quiet below 256 KiB/s beside an
// eighth of the live heap, GOGC 25 while quiet. Two whole seconds quiet, not
// less: a loaded machine's scheduling makes a busy process allocate little for
// a second now and then.
func New(log *zap.Logger) *Trimmer {
	return &Trimmer{Log: log, Tick: time.Second, Interval: 5 * time.Second, MinFree: 8 << 20, QuietBytes: 256 << 10, QuietGOGC: 25}
}

// sample is what the Trimmer reads from the runtime at each tick.
type sample struct {
	allocs, free, released, live, objects, limit uint64
	gogc                                         int64
}

var names = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/gomemlimit:bytes",
	"/gc/gogc:percent",
}

func newSamples() []metrics.Sample {
	ms := make([]metrics.Sample, len(names))
	for i, n := range names {
		ms[i].Name = n
	}
	return ms
}

func read(ms []metrics.Sample) sample {
	metrics.Read(ms)
	u := func(i int) uint64 {
		if ms[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return ms[i].Value.Uint64()
	}
	return sample{allocs: u(0), free: u(1), released: u(2), live: u(3), objects: u(4), limit: u(5), gogc: int64(u(6))}
}

// quiet reports whether the process allocated little over the tick (of tick)
// between prev and now, with the runtime's memory left to the Trimmer.
func (t *Trimmer) quiet(prev, now sample, tick time.Duration) bool {
	if now.gogc <= 0 || now.limit != math.MaxInt64 {
		return false
	}
	return float64(now.allocs-prev.allocs) <= float64(t.QuietBytes+now.live/8)*tick.Seconds()
}

// due reports whether a trim is due now: prev was read one tick (of tick) earlier.
func (t *Trimmer) due(prev, now sample, tick time.Duration) bool {
	if !t.quiet(prev, now, tick) {
		return false
	}
	back := now.free + now.objects - min(now.objects, now.live) // free pages, and garbage
	return back >= t.MinFree && back >= now.live/4
}

// Run trims until ctx ends.
func (t *Trimmer) Run(ctx context.Context) error {
	ms := newSamples()
	tk := time.NewTicker(t.Tick)
	defer tk.Stop()
	prev := read(ms)
	gogc := newGOGC(operatorGOGC(), t.QuietGOGC)
	defer gogc.set(false)
	var last time.Time
	quiet := false // the tick before was quiet too
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		now := read(ms)
		gogc.set(t.quiet(prev, now, t.Tick))
		due := t.due(prev, now, t.Tick)
		if due && quiet && time.Since(last) >= t.Interval {
			start := time.Now()
			debug.FreeOSMemory()
			last = time.Now()
			t.trims.Add(1)
			after := read(ms)
			t.Log.Info("heap trimmed: allocation went quiet after the heap grew",
				zap.Uint64("free_before", now.free), zap.Uint64("returned", after.released-min(after.released, now.released)),
				zap.Uint64("live", after.live), zap.Duration("took", last.Sub(start)))
			now, due = after, false
		}
		prev, quiet = now, due
	}
}

// Actor is Run as an oklog/run actor.
func (t *Trimmer) Actor() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error { return t.Run(ctx) }, func(error) { cancel() }
}
