package conn

import (
	"context"
	"fmt"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// runReaper enforces every per-connection deadline from one goroutine and one
// ticker: handshake timeout, heartbeat timeout and stuck writes. The read loop only
// stores a timestamp per read, so no timer is armed or reset per frame, and a pass
// over 100,000 connections is a walk over a slice of pointers.
func (m *Manager) runReaper(ctx context.Context) {
	interval := m.reapInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	var buf []*Conn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		buf = m.reap(buf)
		// A reload may have shortened a timeout: follow it.
		if next := m.reapInterval(); next != interval {
			interval = next
			t.Reset(interval)
		}
	}
}

// reapInterval checks each deadline a few times per period, so a connection is cut
// within about a quarter of its timeout after it expired.
func (m *Manager) reapInterval() time.Duration {
	s := m.Settings()
	d := min(s.HandshakeTimeout, s.HeartbeatTimeout, s.WriteTimeout) / 4
	return min(max(d, 10*time.Millisecond), time.Second)
}

func (m *Manager) reap(buf []*Conn) []*Conn {
	s := m.Settings()
	now := mono.Now()
	hs, hb, wt := int64(s.HandshakeTimeout), int64(s.HeartbeatTimeout), int64(s.WriteTimeout)
	buf = m.reg.snapshot(buf)
	for _, c := range buf {
		if ws := c.writeStart.Load(); ws != 0 && now-ws > wt {
			c.closeNow(ReasonWriteTimeout)
			continue
		}
		switch c.state.Load() {
		case stateHandshake:
			// Logged once: the connection stays in the registry while its ERROR
			// lingers, and later passes find it closing already.
			if now-c.accepted > hs && c.fail(ReasonHandshake, protocol.CodeHandshakeTimeout, fmt.Sprintf("no HELLO within %s", s.HandshakeTimeout)) {
				m.handshakeFailed(c, "handshake timeout")
			}
		case stateActive:
			if now-c.lastSeen.Load() > hb {
				c.fail(ReasonHeartbeatTimeout, protocol.CodeHeartbeatTimeout, fmt.Sprintf("heartbeat timeout: nothing received for %s", s.HeartbeatTimeout))
			}
		}
	}
	clear(buf) // do not keep closed connections reachable until the next pass
	return buf[:0]
}
