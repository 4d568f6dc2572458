package client

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPendingSetMatchesMap drives a pendingSet and a map with the same random adds
// and removes, some reports staying pending for very long (a retry backoff), so the
// ring grows, wraps and spills its oldest reports to the map.
func TestPendingSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const first = 1 << 40
	p := newPendingSet(first, 4)
	want := map[uint64]*pending{}
	next := uint64(first)
	for step := range 200_000 {
		switch {
		case len(want) < 64 || rng.IntN(2) == 0:
			r := &pending{seq: next}
			next++
			p.add(r)
			want[r.seq] = r
		default:
			// Mostly the oldest few; 1 in 1000 reports is never removed.
			var seq uint64
			for s := range want {
				if s%1000 != 7 && (seq == 0 || s < seq) {
					seq = s
				}
			}
			if rng.IntN(3) == 0 {
				for s := range want {
					if s%1000 != 7 {
						seq = s
						break
					}
				}
			}
			if seq != 0 {
				p.remove(seq)
				delete(want, seq)
			}
		}
		if step%997 == 0 {
			check(t, &p, want, next)
		}
	}
	check(t, &p, want, next)
	if len(p.ring) > maxPendingRing || len(p.old) == 0 {
		t.Errorf("ring %d entries, %d in the map: want the ring bounded and the stuck reports in the map", len(p.ring), len(p.old))
	}
}

func check(t *testing.T, p *pendingSet, want map[uint64]*pending, next uint64) {
	t.Helper()
	if p.len() != len(want) {
		t.Fatalf("len %d, want %d", p.len(), len(want))
	}
	for s, r := range want {
		if got := p.get(s); got != r {
			t.Fatalf("get(%d) = %p, want %p", s, got, r)
		}
	}
	for _, s := range []uint64{0, next, next + 1, p.lo - 1} {
		if want[s] == nil && p.get(s) != nil {
			t.Fatalf("get(%d) found a report that is not pending", s)
		}
	}
	var got []uint64
	p.all(func(r *pending) { got = append(got, r.seq) })
	slices.Sort(got)
	var keys []uint64
	for s := range want {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Fatalf("all gives %d seqs, want %d", len(got), len(keys))
	}
}
