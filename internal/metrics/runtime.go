package metrics

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/hawk-agents/hawk/internal/promtext"
)

// goRuntime is the Go runtime's metrics (go_*), the names, help texts and types
// client_golang's Go collector writes, read at each scrape from one
// runtime.ReadMemStats.
type goRuntime struct {
	ms      runtime.MemStats
	gc      debug.GCStats
	threads int
}

func (g *goRuntime) snapshot() {
	runtime.ReadMemStats(&g.ms)
	g.gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&g.gc)
	g.threads, _ = runtime.ThreadCreateProfile(nil)
}

// memStats are the go_memstats_* metrics: name, help, counter (or gauge), field.
var memStats = []struct {
	name, help string
	counter    bool
	get        func(*runtime.MemStats) uint64
}{
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", false, func(m *runtime.MemStats) uint64 { return m.Alloc }},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", true, func(m *runtime.MemStats) uint64 { return m.TotalAlloc }},
	{"go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", false, func(m *runtime.MemStats) uint64 { return m.BuckHashSys }},
	{"go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", true, func(m *runtime.MemStats) uint64 { return m.Frees }},
	{"go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", false, func(m *runtime.MemStats) uint64 { return m.GCSys }},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", false, func(m *runtime.MemStats) uint64 { return m.HeapAlloc }},
	{"go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", false, func(m *runtime.MemStats) uint64 { return m.HeapIdle }},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", false, func(m *runtime.MemStats) uint64 { return m.HeapInuse }},
	{"go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", false, func(m *runtime.MemStats) uint64 { return m.HeapObjects }},
	{"go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", false, func(m *runtime.MemStats) uint64 { return m.HeapReleased }},
	{"go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", false, func(m *runtime.MemStats) uint64 { return m.HeapSys }},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", true, func(m *runtime.MemStats) uint64 { return m.Mallocs }},
	{"go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", false, func(m *runtime.MemStats) uint64 { return m.MCacheInuse }},
	{"go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", false, func(m *runtime.MemStats) uint64 { return m.MCacheSys }},
	{"go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", false, func(m *runtime.MemStats) uint64 { return m.MSpanInuse }},
	{"go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", false, func(m *runtime.MemStats) uint64 { return m.MSpanSys }},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", false, func(m *runtime.MemStats) uint64 { return m.NextGC }},
	{"go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", false, func(m *runtime.MemStats) uint64 { return m.OtherSys }},
	{"go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", false, func(m *runtime.MemStats) uint64 { return m.StackInuse }},
	{"go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", false, func(m *runtime.MemStats) uint64 { return m.StackSys }},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", false, func(m *runtime.MemStats) uint64 { return m.Sys }},
}

// registerRuntime registers the go_* and process_* metrics. Registering costs
// nothing but the families: the runtime and /proc are read only by a scrape.
func registerRuntime(r *promtext.Registry) {
	registerGoRuntime(r)
	registerProcess(r)
}

func registerGoRuntime(r *promtext.Registry) {
	g := &goRuntime{}
	r.OnWrite(g.snapshot)
	r.SummaryFunc("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", func() promtext.Summary {
		s := promtext.Summary{Sum: g.gc.PauseTotal.Seconds(), Count: uint64(g.gc.NumGC)}
		for i, q := range []float64{0, 0.25, 0.5, 0.75, 1} {
			s.Quantiles = append(s.Quantiles, [2]float64{q, g.gc.PauseQuantiles[i].Seconds()})
		}
		return s
	})
	gogc := gcPercent(os.Getenv("GOGC"))
	r.GaugeFunc("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", func() float64 { return gogc })
	r.GaugeFunc("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", func() float64 { return float64(debug.SetMemoryLimit(-1)) })
	r.GaugeFunc("go_goroutines", "Number of goroutines that currently exist.", func() float64 { return float64(runtime.NumGoroutine()) })
	r.GaugeVec("go_info", "Information about the Go environment.", "version").WithLabelValues(runtime.Version()).Set(1)
	for _, s := range memStats {
		get := s.get
		fn := func() float64 { return float64(get(&g.ms)) }
		if s.counter {
			r.CounterFunc(s.name, s.help, fn)
		} else {
			r.GaugeFunc(s.name, s.help, fn)
		}
	}
	r.GaugeFunc("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", func() float64 { return float64(g.ms.LastGC) / 1e9 })
	r.GaugeFunc("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", func() float64 { return float64(runtime.GOMAXPROCS(0)) })
	r.GaugeFunc("go_threads", "Number of OS threads created.", func() float64 { return float64(g.threads) })
}

// gcPercent is GOGC as the runtime reads it: hawk never changes it after start.
func gcPercent(env string) float64 {
	if env == "off" {
		return -1
	}
	if n, err := strconv.Atoi(env); err == nil {
		return float64(n)
	}
	return 100
}
