package handoff

import (
	"os"
	"slices"
)

// Target is where a group's connections go in the new process: what it must have
// to adopt them.
type Target struct {
	Kind     string // KindNative, KindLegacy
	Listener string // KindLegacy: the listener's name
	Format   string // KindLegacy: its format
}

// Group is connections of one kind that move to one Target: the native
// connections (conn.Manager) or one legacy listener's (legacy.Listener). A kind of
// connection joins the handoff by implementing Group in the old process and
// Adopter in the new one.
type Group interface {
	HandoffTarget() Target
	// HandoffConns returns the group's connections now (the listener is closed).
	HandoffConns() []Conn
}

// Conns is cs as a Group's connections.
func Conns[T Conn](cs []T) []Conn {
	out := make([]Conn, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// Adopter takes over, in the new process, the connections sent to its Target.
type Adopter interface {
	HandoffTarget() Target
	// Adopt serves the socket f (Adopt closes it, or keeps it as the connection)
	// from the state st it was stopped in; an error means f was closed unserved.
	Adopt(f *os.File, st *State) error
}

// kindOrder is the order kinds move in, each with a deadline of its own: native
// connections first (they are the fleet, and each waits for its batch), then the
// legacy ones.
var kindOrder = []string{KindNative, KindLegacy}

func kindRank(kind string) int {
	if i := slices.Index(kindOrder, kind); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// refuses says why the receiver that sent r cannot adopt t's connections ("" when
// it can). A sent descriptor cannot come back, so this is decided before any is
// asked: a legacy connection goes only to a listener of the same name and format.
func (r *Ready) refuses(t Target) string {
	switch t.Kind {
	case KindNative:
		return ""
	case KindLegacy:
		format, ok := r.Legacy[t.Listener]
		switch {
		case !ok:
			return ReasonNoListener
		case format != t.Format:
			return ReasonFormat
		}
		return ""
	}
	return ReasonNoListener // a kind this receiver does not announce
}

// readyFor is the ready that announces adopters and the State version this
// build reads.
func readyFor(adopters []Adopter) *Ready {
	r := &Ready{StateVersion: StateVersion}
	for _, a := range adopters {
		if t := a.HandoffTarget(); t.Kind == KindLegacy {
			if r.Legacy == nil {
				r.Legacy = map[string]string{}
			}
			r.Legacy[t.Listener] = t.Format
		}
	}
	return r
}

// Counter counts what a handoff did (metrics.Handoff).
type Counter interface {
	// Add counts n connections with this result and reason.
	Add(result, reason string, n int)
	// Count records a whole handoff: in the old process, and in the new one from
	// the summary the old one sent.
	Count(s *Summary)
}
