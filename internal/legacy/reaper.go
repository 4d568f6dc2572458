package legacy

import (
	"context"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// runReaper enforces the idle timeout and stuck writes of every connection of the
// listener from one goroutine and one ticker, as internal/conn's reaper does: the
// read and write paths only store timestamps.
func (l *Listener) runReaper(ctx context.Context) {
	interval := l.reapInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	var buf []*lconn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		buf = l.reap(buf)
		if next := l.reapInterval(); next != interval { // a reload changed a timeout
			interval = next
			t.Reset(interval)
		}
	}
}

// reapInterval checks each deadline a few times per period.
func (l *Listener) reapInterval() time.Duration {
	d := min(l.Settings().IdleTimeout, l.writeTO()) / 4
	return min(max(d, 10*time.Millisecond), time.Second)
}

func (l *Listener) reap(buf []*lconn) []*lconn {
	now := mono.Now()
	idle, wt := int64(l.Settings().IdleTimeout), int64(l.writeTO())
	buf = l.snapshot(buf)
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
