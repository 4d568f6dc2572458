package conn

import (
	"fmt"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// The reaper (internal/reaper) enforces every per-connection deadline from one
// goroutine and one ticker: handshake timeout, heartbeat timeout, frame timeout and
// writes that make no progress. The read and write paths only store timestamps, so
// no timer is armed or reset per frame, and a pass over 100,000 connections is a
// walk over a slice of pointers.

// shortestTimeout is the deadline the reaper's period follows.
func (m *Manager) shortestTimeout() time.Duration {
	s := m.Settings()
	return min(s.HandshakeTimeout, s.HeartbeatTimeout, s.WriteTimeout, s.FrameTimeout)
}

func (m *Manager) reap(buf []*Conn) []*Conn {
	s := m.Settings()
	now := mono.Now()
	hs, hb, wt, ft := int64(s.HandshakeTimeout), int64(s.HeartbeatTimeout), int64(s.WriteTimeout), int64(s.FrameTimeout)
	buf = m.reg.Snapshot(buf)
	for _, c := range buf {
		if wa := c.writeAt.Load(); wa != 0 && now-wa > wt {
			c.stall(now, s.WriteTimeout)
			continue
		}
		// A stopped reader (paused) cannot see the client's bytes: while it waits, only
		// the write timeout applies. paused is loaded only when a deadline has passed.
		if fs := c.frameStart.Load(); fs != 0 && now-fs > ft && !c.paused.Load() {
			have := c.frameHave.Load()
			c.fail(ReasonFrameTimeout, protocol.CodeFrameTimeout, frameTimeoutMessage(time.Duration(now-fs), s.FrameTimeout, int(have>>32), int(uint32(have))))
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
			if now-c.lastSeen.Load() > hb && !c.paused.Load() {
				c.fail(ReasonHeartbeatTimeout, protocol.CodeHeartbeatTimeout, fmt.Sprintf("heartbeat timeout: nothing received for %s", s.HeartbeatTimeout))
			}
		}
	}
	clear(buf) // do not keep closed connections reachable until the next pass
	return buf[:0]
}

// frameTimeoutMessage says how old the incomplete frame is and how much of it came:
// "frame started 30.2s ago is incomplete: 17 of 1048596 bytes (limits.frame_timeout
// is 30s)". size is 0 while the 16-byte header itself is incomplete.
func frameTimeoutMessage(age, limit time.Duration, have, size int) string {
	age = age.Round(time.Millisecond)
	if size == 0 {
		return fmt.Sprintf("frame started %s ago is incomplete: %d of its %d header bytes (limits.frame_timeout is %s)", age, have, protocol.HeaderSize, limit)
	}
	return fmt.Sprintf("frame started %s ago is incomplete: %d of %d bytes (limits.frame_timeout is %s)", age, have, size, limit)
}
