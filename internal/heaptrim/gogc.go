package heaptrim

// gogc switches GOGC between the operator's and the quiet one.
type gogc struct {
	operator, quiet int
	lowered         bool
}

// newGOGC returns the switch for the operator's GOGC; it never lowers GOGC=off
// or a GOGC already at or below quiet.
func newGOGC(operator, quiet int) *gogc {
	return &gogc{operator: operator, quiet: quiet}
}

// set lowers GOGC to the quiet one when quiet, gives the operator's back when not.
func (g *gogc) set(quiet bool) {
	if quiet == g.lowered || g.quiet <= 0 || g.operator <= g.quiet {
		return
	}
	if quiet {
		setGCPercent(g.quiet)
	} else {
		setGCPercent(g.operator)
	}
	g.lowered = quiet
}
