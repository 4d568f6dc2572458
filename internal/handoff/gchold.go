package handoff

import (
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/heaptrim"
)

// A receiver adopting thousands of connections grows its heap from little: each
// adopted connection's Conn, poll descriptor and buffers stay live. At the
// operator's GOGC the collector runs at every doubling of that heap (8 cycles
// for 15,000 idle connections), each marking everything adopted so far and
// freeing almost nothing, on the cores the two processes share. So while it
// adopts, the receiver holds collection off (heaptrim.Hold) under a memory
// limit of holdExtra above what it held when it began, and gives the
// operator's settings back at the end, or earlier, once holdRelease was
// allocated or the limit comes near: a handoff larger than that collects as
// usual past that point.
const (
	holdExtra   = 128 << 20
	holdRelease = 96 << 20
	// holdCheck is how many adoptions pass between two looks at the allocation.
	holdCheck = 64
)

// After the handoff the new process's heap keeps growing to what the old one
// held (the moved connections' buffers and windows fill as they serve): at the
// operator's GOGC that is another collection at every doubling from what the
// handoff left, 3 to 5 in the first seconds of each upgrade under load, each
// stopping the world and taking one of the cores the two processes share for
// its mark. So the hold may stay on past the handoff until the heap reaches the
// old process's heap goal (its Summary's HeapGoal): the first collection then
// runs at the size the old process collected at.
const (
	// floorLook is how often the hold kept past the handoff looks at the heap.
	floorLook = 10 * time.Millisecond
)

// floorHeld is the heap goal a hold kept past the handoff waits for, while it
// waits: the goal this process passes on if it is upgraded meanwhile (its own
// heap goal is the hold's, from the memory limit, not one to pass).
var floorHeld atomic.Uint64

// heapGoal is the heap goal this process passes to its successor.
func heapGoal() uint64 {
	if f := floorHeld.Load(); f > 0 {
		return f
	}
	return heaptrim.Goal()
}

// gcHold is one hold of the collector for a receive.
type gcHold struct {
	release func()
	on      bool
	ms      []metrics.Sample // the heap allocated so far
	// after is what may be allocated before the hold ends, margin how near
	// the limit the memory held may come.
	after, margin uint64
	allocs        uint64 // heap allocated when the hold began
	cycles        uint64 // collections completed when the hold began
	limit         uint64 // the memory the hold allows: what the runtime held, and extra
	n             int    // adoptions since the last look
}

// holdGC holds the collector with extra bytes of room, until after bytes were
// allocated; unless the operator's settings forbid it (then the gcHold does
// nothing).
func holdGC(extra, after uint64) *gcHold {
	h := &gcHold{ms: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}},
		after: after, margin: extra - min(after, extra)}
	held := heaptrim.Held()
	h.release, h.on = heaptrim.Hold(extra)
	if h.on {
		h.allocs, _ = h.read()
		h.cycles = h.ms[2].Value.Uint64()
		h.limit = held + extra
	}
	return h
}

// read returns the heap allocated so far and the memory the limit counts; h.ms
// keeps the heap in use and the collections completed.
func (h *gcHold) read() (allocs, held uint64) {
	metrics.Read(h.ms)
	return h.ms[0].Value.Uint64(), heaptrim.Held()
}

// adopted counts one adoption, and ends the hold once its after bytes were
// allocated since it began, or the memory held (stacks too) comes as near its
// limit as extra less after.
func (h *gcHold) adopted() {
	if !h.on {
		return
	}
	if h.n++; h.n < holdCheck {
		return
	}
	h.n = 0
	allocs, held := h.read()
	if allocs-h.allocs >= h.after || held+h.margin >= h.limit {
		h.end()
	}
}

// end gives back the operator's settings.
func (h *gcHold) end() {
	if h.on {
		h.release()
		h.on = false
	}
}

// until keeps the hold on, once the handoff is over, until the heap in use
// reaches goal, a collection ran (the hold's limit was reached), the hold's
// allowance was allocated, most passed, or stop was closed; then it ends it and
// says which, with the heap in use at its last look.
func (h *gcHold) until(goal uint64, most time.Duration, stop <-chan struct{}) (why string, inUse uint64) {
	if !h.on {
		return "no hold", 0
	}
	defer h.end()
	goal = min(goal, h.after) // a goal past the allowance would end the hold there anyway
	floorHeld.Store(goal)
	defer floorHeld.Store(0)
	t := time.NewTicker(floorLook)
	defer t.Stop()
	deadline := time.After(most)
	for {
		allocs, held := h.read()
		inUse = h.ms[1].Value.Uint64()
		switch {
		case inUse >= goal:
			return "heap goal reached", inUse
		case h.ms[2].Value.Uint64() != h.cycles:
			return "a collection ran", inUse
		case allocs-h.allocs >= h.after || held+h.margin >= h.limit:
			return "allowance spent", inUse
		}
		select {
		case <-t.C:
		case <-deadline:
			return "waited its most", inUse
		case <-stop:
			return "stopped", inUse
		}
	}
}
