package main

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// What `load` measures of a reconnect storm (a server told to upgrade sends every
// connection GOAWAY and each client moves to the new process): busy refusals seen,
// how fast the clients got back in, and how long moving everyone took. These are the
// clients' view; the server's own count is hawk_admissions_peak_per_second.

// stormStats is shared by every client of a run; OnEvent feeds it from the clients'
// goroutines, so it only takes atomics and one short lock per reconnect.
type stormStats struct {
	busy        atomic.Uint64 // ERROR busy received, at the first dial or at a reconnect
	busyStorm   atomic.Uint64 // of which after the first GOAWAY: refused by the new process
	firstGoaway atomic.Int64  // time.Since(start) of the first GOAWAY seen, +1 (0: none yet)

	mu         sync.Mutex
	reconnects []time.Duration // time.Since(start) of every reconnect that completed its handshake
}

// onEvent returns client i's Options.OnEvent.
func (st *stormStats) onEvent(start time.Time) func(client.Event) {
	var connected atomic.Bool // the first connection is not a reconnect
	return func(e client.Event) {
		switch e.Kind {
		case client.EventGoaway:
			st.firstGoaway.CompareAndSwap(0, int64(time.Since(start))+1)
		case client.EventConnected:
			if connected.Swap(true) {
				st.mu.Lock()
				st.reconnects = append(st.reconnects, time.Since(start))
				st.mu.Unlock()
			}
		case client.EventDialFailed:
			if isBusy(e.Err) {
				st.addBusy()
			}
		}
	}
}

// addBusy counts one ERROR busy.
func (st *stormStats) addBusy() {
	st.busy.Add(1)
	if st.firstGoaway.Load() != 0 {
		st.busyStorm.Add(1)
	}
}

// result returns the most reconnects completed within any one second (a sliding
// window), and the time from the first GOAWAY to the last reconnect (0 without a
// GOAWAY).
func (st *stormStats) result() (peak int, move time.Duration) {
	st.mu.Lock()
	ts := slices.Clone(st.reconnects)
	st.mu.Unlock()
	slices.Sort(ts)
	for i, j := 0, 0; j < len(ts); j++ {
		for ts[j]-ts[i] >= time.Second {
			i++
		}
		peak = max(peak, j-i+1)
	}
	if g := st.firstGoaway.Load(); g != 0 && len(ts) > 0 {
		move = max(ts[len(ts)-1]-time.Duration(g-1), 0)
	}
	return peak, move
}

// isBusy reports whether err is the server's ERROR busy.
func isBusy(err error) bool {
	var ep *protocol.ErrorPayload
	return errors.As(err, &ep) && ep.Code == protocol.CodeBusy
}
