package conn

import (
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// ending is why a connection ends. Only a connection that is closing has one, so a
// live connection does not carry it; it is set and read under wmu.
type ending struct {
	reason   CloseReason
	code     protocol.Code // the ERROR the server sent, if it sent one
	stallFor time.Duration // see Conn.stalled
}

// endLocked returns c's ending, made now if it has none, with reason unless it
// already has one: the first reason wins. Caller holds wmu.
func (c *Conn) endLocked(reason CloseReason) *ending {
	if c.end == nil {
		c.end = &ending{}
	}
	if c.end.reason == "" {
		c.end.reason = reason
	}
	return c.end
}

// reasonLocked is why c ends, "" while nothing says so. Caller holds wmu.
func (c *Conn) reasonLocked() CloseReason {
	if c.end == nil {
		return ""
	}
	return c.end.reason
}
