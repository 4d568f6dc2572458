package conn

import (
	"github.com/hawk-agents/hawk/internal/connset"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// registry holds every live connection (a connset the reaper and the drain walk)
// and an index by client id for "the newer connection wins", kept under the set's
// lock.
type registry struct {
	connset.Set[*Conn]
	byClient map[string]*Conn
}

func newRegistry() *registry { return &registry{byClient: make(map[string]*Conn)} }

// bind records c as the connection of its client id; an older connection with the
// same id is told ERROR replaced and closed: an agent that reconnects after a network
// blip must not be refused because the server has not yet noticed the old socket die.
// It reports false if c is already gone.
func (r *registry) bind(c *Conn) bool {
	var old *Conn
	if !r.IfMember(c, func() {
		old = r.byClient[c.clientID]
		r.byClient[c.clientID] = c
	}) {
		return false
	}
	if old != nil && old != c {
		old.fail(ReasonReplaced, protocol.CodeReplaced, "a newer connection for client id "+c.clientID+" was accepted")
	}
	return true
}

func (r *registry) remove(c *Conn) {
	r.Remove(c, func() {
		if r.byClient[c.clientID] == c {
			delete(r.byClient, c.clientID)
		}
	})
}
