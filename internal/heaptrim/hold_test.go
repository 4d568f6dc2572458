package heaptrim

import (
	"math"
	"runtime/debug"
	"testing"
)

// settingsNow reads GOGC and the memory limit as the runtime has them.
func settingsNow() (int64, uint64) {
	s := read(newSamples())
	return s.gogc, s.limit
}

func TestHoldTurnsGCOffUnderALimitAndGivesBackWhatItFound(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(80))
	before := Held()
	release, ok := Hold(64 << 20)
	if !ok {
		t.Fatal("no hold with GOGC 80 and no memory limit")
	}
	gogc, limit := settingsNow()
	if gogc >= 0 {
		t.Errorf("GOGC %d during the hold, want off", gogc)
	}
	if limit < before+64<<20 || limit == math.MaxInt64 {
		t.Errorf("memory limit %d during the hold, want at least %d", limit, before+64<<20)
	}
	if again, ok := Hold(1 << 20); ok {
		again()
		t.Error("a second hold while one is on")
	}
	release()
	release() // a second release changes nothing
	if gogc, limit := settingsNow(); gogc != 80 || limit != math.MaxInt64 {
		t.Errorf("after the hold: GOGC %d, limit %d; want 80 and none", gogc, limit)
	}
}

// The operator's GOGC=off or memory limit: no hold, nothing changed.
func TestHoldLeavesTheOperatorsSettingsAlone(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, tc := range []struct {
		name  string
		gogc  int
		limit int64
	}{{"GOGC=off", -1, math.MaxInt64}, {"GOMEMLIMIT", 100, 1 << 40}, {"both", -1, 1 << 40}} {
		debug.SetGCPercent(tc.gogc)
		debug.SetMemoryLimit(tc.limit)
		release, ok := Hold(64 << 20)
		release()
		if ok {
			t.Errorf("%s: held", tc.name)
		}
		if gogc, limit := settingsNow(); gogc != int64(tc.gogc) || limit != uint64(tc.limit) {
			t.Errorf("%s: GOGC %d, limit %d after; want %d, %d", tc.name, gogc, limit, tc.gogc, tc.limit)
		}
	}
}

// The Trimmer's quiet GOGC and a hold, in either order: while the hold is on
// the Trimmer never touches the runtime's GOGC, what it chooses meanwhile is
// what the hold gives back, and a Trimmer started during a hold takes the
// operator's GOGC, not the hold's off.
func TestHoldAndQuietGOGCDoNotUndoEachOther(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	g := newGOGC(operatorGOGC(), 25)
	g.set(true) // quiet: lowered
	release, ok := Hold(64 << 20)
	if !ok {
		t.Fatal("no hold")
	}
	if op := operatorGOGC(); op != 25 {
		t.Errorf("operator's GOGC read during the hold: %d, want what the hold gives back, 25", op)
	}
	g.set(false) // not quiet: the operator's, for when the hold ends
	if gogc, _ := settingsNow(); gogc >= 0 {
		t.Errorf("the Trimmer set GOGC %d during the hold", gogc)
	}
	release()
	if gogc, limit := settingsNow(); gogc != 100 || limit != math.MaxInt64 {
		t.Errorf("after the hold: GOGC %d, limit %d; want the operator's 100 and none", gogc, limit)
	}

	g.set(true)
	release, _ = Hold(64 << 20)
	if g2 := newGOGC(operatorGOGC(), 25); g2.operator != 25 {
		t.Errorf("a Trimmer started during the hold takes GOGC %d", g2.operator)
	}
	release()
	if gogc, _ := settingsNow(); gogc != 25 {
		t.Errorf("after a hold the Trimmer left alone: GOGC %d, want its quiet 25", gogc)
	}
	g.set(false)
	if gogc, _ := settingsNow(); gogc != 100 {
		t.Errorf("the Trimmer gave back GOGC %d, want 100", gogc)
	}
}

// Goal is the runtime's heap goal, but none while a hold is on (the memory
// limit's goal is not one the process reached) or with GOGC off.
func TestGoalNoneWhileHeld(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if g := Goal(); g < 4<<20 {
		t.Errorf("Goal %d at GOGC 100, want at least the runtime's 4 MiB", g)
	}
	release, ok := Hold(64 << 20)
	if !ok {
		t.Fatal("no hold")
	}
	if g := Goal(); g != 0 {
		t.Errorf("Goal %d during a hold, want 0", g)
	}
	release()
	debug.SetGCPercent(-1)
	if g := Goal(); g != 0 {
		t.Errorf("Goal %d with GOGC off, want 0", g)
	}
}
