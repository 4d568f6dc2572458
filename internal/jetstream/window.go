package jetstream

import "time"

// window is how many publishes may await their acknowledgement at once. It keeps
// JetStream's acknowledgements within half of the publish timeout, so that a broker
// slower than the agents makes hawk hold reports back (Submit blocks and the
// connections stop being read, as on a slow disk) instead of letting them time out,
// be NACKed and be sent again while their first copies still wait in the broker's
// queue: resends that only make the queue longer.
//
// It is a congestion window driven by acknowledgement latency rather than loss. A
// batch acknowledged later than the target (or not at all) halves the window, down
// from the publishes then in flight, at most once per round trip: a batch published
// before the last cut says nothing about the window since. A batch acknowledged
// within half the target grows the window by its size, doubling it each round trip;
// one between grows it by an eighth of that. The window starts at initialWindow,
// never falls below minWindow and never exceeds jetstream.max_pending.
type window struct {
	limit  float64
	floor  float64
	max    float64
	target time.Duration
	cutAt  time.Time // the last halving
}

const (
	initialWindow = 256
	minWindow     = 64
)

func newWindow(maxPending int, publishTimeout time.Duration) window {
	m := float64(maxPending)
	return window{limit: min(initialWindow, m), floor: min(minWindow, m), max: m, target: publishTimeout / 2}
}

// admits reports whether a batch of n publishes may start while pending await
// their acknowledgement. A batch into an empty pipeline always may, however large.
func (w *window) admits(n, pending int) bool {
	return pending == 0 || float64(pending+n) <= w.limit
}

// size is the window in publishes.
func (w *window) size() int { return int(w.limit) }

// observe takes the outcome of a batch of n publishes started at `at`: acknowledged
// (ok) or failed, latency after it, with pending publishes in flight counting it.
// It reports whether it halved the window.
func (w *window) observe(at time.Time, latency time.Duration, ok bool, n, pending int) (cut bool) {
	switch {
	case latency > w.target:
		if at.Before(w.cutAt) {
			return false
		}
		w.limit = max(min(w.limit, float64(pending))/2, w.floor)
		w.cutAt = at.Add(latency)
		return true
	case !ok: // failed fast (NATS disconnected, a publish error): no news of the broker's pace
	case latency <= w.target/2:
		w.limit = min(w.limit+float64(n), w.max)
	default:
		w.limit = min(w.limit+float64(n)/8, w.max)
	}
	return false
}
