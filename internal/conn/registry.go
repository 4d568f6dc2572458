package conn

import (
	"sync"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// registry holds every live connection: a slice the reaper and the drain walk, and
// an index by client id for "the newer connection wins".
type registry struct {
	mu       sync.Mutex
	all      []*Conn
	byClient map[string]*Conn
	empty    chan struct{} // closed when all becomes empty; made by emptied
}

func newRegistry() *registry { return &registry{byClient: make(map[string]*Conn)} }

func (r *registry) add(c *Conn) {
	r.mu.Lock()
	c.regIdx = len(r.all)
	r.all = append(r.all, c)
	r.mu.Unlock()
}

// bind records c as the connection of its client id; an older connection with the
// same id is told ERROR replaced and closed: an agent that reconnects after a network
// blip must not be refused because the server has not yet noticed the old socket die.
// It reports false if c is already gone.
func (r *registry) bind(c *Conn) bool {
	r.mu.Lock()
	if c.regIdx < 0 {
		r.mu.Unlock()
		return false
	}
	old := r.byClient[c.clientID]
	r.byClient[c.clientID] = c
	r.mu.Unlock()
	if old != nil && old != c {
		old.fail(ReasonReplaced, protocol.CodeReplaced, "a newer connection for client id "+c.clientID+" was accepted")
	}
	return true
}

func (r *registry) remove(c *Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := c.regIdx; i >= 0 {
		last := len(r.all) - 1
		r.all[i] = r.all[last]
		r.all[i].regIdx = i
		r.all[last] = nil
		r.all = r.all[:last]
		c.regIdx = -1
		if last == 0 && r.empty != nil {
			close(r.empty)
			r.empty = nil
		}
	}
	if r.byClient[c.clientID] == c {
		delete(r.byClient, c.clientID)
	}
}

// emptied returns a channel that is closed once no connection is left (at once if
// none is): the drain waits on it instead of polling.
func (r *registry) emptied() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.all) == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	if r.empty == nil {
		r.empty = make(chan struct{})
	}
	return r.empty
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// snapshot copies the live connections into dst (reused by the caller) so they can
// be walked without holding the lock.
func (r *registry) snapshot(dst []*Conn) []*Conn {
	r.mu.Lock()
	dst = append(dst[:0], r.all...)
	r.mu.Unlock()
	return dst
}
