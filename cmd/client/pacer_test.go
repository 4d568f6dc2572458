package main

import (
	"testing"
	"time"
)

// A tick whose time is earlier than the one before (its value lagged its firing)
// gives nothing and takes nothing back: the budget, a count of slots to issue,
// never goes below 0. Before, 9.6 ms after 10 ms at 5,000/s left it below 0, and
// the dispatcher sliced its queue with it (a panic in an e2e test's load).
func TestPacerBudgetNeverNegative(t *testing.T) {
	p := pacer{rate: 5000, hold: 100}
	p.add(10 * time.Millisecond)
	if p.budget != 50 {
		t.Fatalf("budget %d after 10 ms at 5,000/s, want 50", p.budget)
	}
	p.budget -= 50 // all issued
	p.add(9600 * time.Microsecond)
	if p.budget != 0 || p.given != 50 {
		t.Fatalf("budget %d, given %d after an earlier time, want 0 and 50", p.budget, p.given)
	}
	p.add(20 * time.Millisecond)
	if p.budget != 50 || p.given != 100 {
		t.Fatalf("budget %d, given %d at 20 ms, want 50 and 100", p.budget, p.given)
	}
	p.add(time.Second) // what nobody waited for is dropped: at most hold
	if p.budget != 100 || p.given != 5000 {
		t.Fatalf("budget %d, given %d at 1 s, want 100 (the hold) and 5000", p.budget, p.given)
	}
}
