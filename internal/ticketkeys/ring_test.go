package ticketkeys

import (
	"slices"
	"testing"
	"time"
)

func TestRingRotate(t *testing.T) {
	var applied [][]Key
	first := NewKey()
	t0 := time.Unix(1000, 0)
	r := NewRing([]Key{first}, t0, func(k []Key) { applied = append(applied, k) })
	if len(applied) != 1 || !slices.Equal(applied[0], []Key{first}) {
		t.Fatalf("applied %x", applied)
	}
	r.Rotate(t0.Add(time.Hour), 1)
	keys, rotated := r.Keys()
	if len(keys) != 2 || keys[1] != first || keys[0] == first || !rotated.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after one rotation: %x at %v", keys, rotated)
	}
	second := keys[0]
	r.Rotate(t0.Add(2*time.Hour), 1)
	keys, _ = r.Keys()
	if len(keys) != 2 || keys[1] != second || slices.Contains(keys, first) {
		t.Fatalf("after two rotations with 1 previous: %x", keys)
	}
	r.Rotate(t0.Add(3*time.Hour), 0)
	if keys, _ = r.Keys(); len(keys) != 1 {
		t.Fatalf("0 previous: %d keys", len(keys))
	}
	for range 2 * MaxKeys {
		r.Rotate(t0, 100)
	}
	if keys, _ = r.Keys(); len(keys) != MaxKeys {
		t.Fatalf("%d keys, at most %d", len(keys), MaxKeys)
	}
	if len(applied) != 4+2*MaxKeys || !r.Equal(applied[len(applied)-1]) {
		t.Fatalf("%d lists applied, the last not in force", len(applied))
	}
}
