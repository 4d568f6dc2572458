package heaptrim

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// settings serialises what changes the runtime's GOGC and memory limit: the
// Trimmer's quiet GOGC and Hold. While a hold is on, the Trimmer's choice is
// what the hold gives back at its end, never the runtime's setting: neither
// undoes the other.
var settings struct {
	sync.Mutex
	held  bool
	gogc  int   // while held: the GOGC to give back
	limit int64 // while held: the memory limit to give back
}

// Hold turns the collector off for a burst of allocation that stays live (a
// handoff's adopted connections: collecting while that heap grows from little
// marks it again and again and frees almost nothing), with a memory limit of
// extra bytes above what the runtime holds now as the bound: reaching it
// collects as usual. release gives back the GOGC and the memory limit found,
// or the GOGC the Trimmer chose meanwhile; it may be called more than once. ok
// is false, and release does nothing, where the operator chose how the runtime
// keeps memory (GOGC=off, or a memory limit) or another hold is on.
func Hold(extra uint64) (release func(), ok bool) {
	settings.Lock()
	defer settings.Unlock()
	if settings.held {
		return func() {}, false
	}
	limit := debug.SetMemoryLimit(-1)
	if limit != math.MaxInt64 {
		return func() {}, false
	}
	gogc := readGOGC()
	if gogc < 0 {
		return func() {}, false
	}
	debug.SetMemoryLimit(int64(min(Held()+extra, math.MaxInt64))) // first: never off without it
	debug.SetGCPercent(-1)
	settings.held, settings.gogc, settings.limit = true, gogc, limit
	var once sync.Once
	return func() { once.Do(unhold) }, true
}

func unhold() {
	settings.Lock()
	defer settings.Unlock()
	debug.SetGCPercent(settings.gogc)
	debug.SetMemoryLimit(settings.limit)
	settings.held = false
}

var heldNames = []string{"/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

// Held is the memory the runtime's memory limit counts: all it maps, less the
// heap returned to the OS.
func Held() uint64 {
	ms := make([]metrics.Sample, len(heldNames))
	for i, n := range heldNames {
		ms[i].Name = n
	}
	metrics.Read(ms)
	return ms[0].Value.Uint64() - min(ms[1].Value.Uint64(), ms[0].Value.Uint64())
}

// operatorGOGC is GOGC as the operator has it: what a hold on will give back.
func operatorGOGC() int {
	settings.Lock()
	defer settings.Unlock()
	if settings.held {
		return settings.gogc
	}
	return readGOGC()
}

// readGOGC reads GOGC without setting it (-1: off).
func readGOGC() int {
	ms := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(ms)
	return int(int64(ms[0].Value.Uint64()))
}

// setGCPercent sets GOGC, or, while a hold is on, what the hold gives back.
func setGCPercent(p int) {
	settings.Lock()
	defer settings.Unlock()
	if settings.held {
		settings.gogc = p
		return
	}
	debug.SetGCPercent(p)
}

// Goal is the heap size at which the runtime starts its next collection (the
// live heap of the last one and GOGC percent of it); 0 while a hold is on (its
// goal is the memory limit's, not one the process reached) or with GOGC off.
func Goal() uint64 {
	settings.Lock()
	defer settings.Unlock()
	if settings.held || readGOGC() < 0 {
		return 0
	}
	ms := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(ms)
	return ms[0].Value.Uint64()
}
