// Package connset is the set of a server's live connections: O(1) add and remove, snapshots, a wait for empty.
package connset

import "sync"

// Member is embedded in a connection type: its place in the Set it belongs to.
// The zero value is a connection in no set.
type Member struct {
	pos int // index in Set.all plus one; 0 when not a member
}

func (m *Member) member() *Member { return m }

// Elem is a connection type that embeds Member.
type Elem interface {
	comparable
	member() *Member
}

// Set holds live connections in a slice the reaper and the drain walk without
// holding its lock (Snapshot). Its methods are safe for concurrent use.
type Set[T Elem] struct {
	mu    sync.Mutex
	all   []T
	empty chan struct{} // closed when all becomes empty; made by Emptied
}

// Add adds c, which must not be a member.
func (s *Set[T]) Add(c T) {
	s.mu.Lock()
	s.all = append(s.all, c)
	c.member().pos = len(s.all)
	s.mu.Unlock()
}

// Remove removes c if it is a member, then runs then (when not nil) under the
// set's lock, member or not: an index kept beside the set stays consistent with it.
func (s *Set[T]) Remove(c T, then func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := c.member(); m.pos > 0 {
		i, last := m.pos-1, len(s.all)-1
		s.all[i] = s.all[last]
		s.all[i].member().pos = i + 1
		var zero T
		s.all[last] = zero
		s.all = s.all[:last]
		m.pos = 0
		if last == 0 && s.empty != nil {
			close(s.empty)
			s.empty = nil
		}
	}
	if then != nil {
		then()
	}
}

// IfMember runs f under the set's lock if c is a member, and reports whether it was.
func (s *Set[T]) IfMember(c T, f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.member().pos == 0 {
		return false
	}
	f()
	return true
}

// Len is the number of members.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// Snapshot copies the members into dst (reused by the caller) so they can be
// walked without holding the lock.
func (s *Set[T]) Snapshot(dst []T) []T {
	s.mu.Lock()
	dst = append(dst[:0], s.all...)
	s.mu.Unlock()
	return dst
}

// Emptied returns a channel that is closed once the set is empty (at once if it
// is): a drain waits on it instead of polling.
func (s *Set[T]) Emptied() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.all) == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	if s.empty == nil {
		s.empty = make(chan struct{})
	}
	return s.empty
}
