package legacy

import (
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// The reaper (internal/reaper) enforces the idle timeout and stuck writes of every
// connection of the listener from one goroutine and one ticker, as internal/conn's
// does: the read and write paths only store timestamps.

// shortestTimeout is the deadline the reaper's period follows.
func (l *Listener) shortestTimeout() time.Duration {
	return min(l.Settings().IdleTimeout, l.writeTO())
}

func (l *Listener) reap(buf []*lconn) []*lconn {
	now := mono.Now()
	idle, wt := int64(l.Settings().IdleTimeout), int64(l.writeTO())
	buf = l.conns.Snapshot(buf)
	for _, c := range buf {
		if ws := c.writeStart.Load(); ws != 0 && now-ws > wt {
			c.closeNow(ReasonWriteTimeout)
			continue
		}
		if now-c.lastSeen.Load() > idle && !c.paused.Load() {
			c.closeNow(ReasonIdleTimeout)
		}
	}
	clear(buf)
	return buf[:0]
}
