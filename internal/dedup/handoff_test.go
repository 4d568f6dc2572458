package dedup

import (
	"errors"
	"testing"
)

// The window a handoff carries (Durable) marks the same seqs durable in another
// table (MergeDurable), also one with a smaller window: a pending or failed seq
// stays storable, a durable one is answered.
func TestDurableMergesIntoAnotherTable(t *testing.T) {
	from := newTable(t, 256, 0).Attach("agent")
	var a answers
	for s := uint64(1); s <= 300; s++ {
		check(t, from, s, &a, Store)
	}
	from.Committed(seqRange(1, 297), nil)
	from.Committed([]uint64{298}, errors.New("disk full")) // failed: not durable
	// 299 and 300 stay pending
	has, hi, bits := from.Durable()
	if !has || hi != 300 {
		t.Fatalf("Durable: has %v hi %d", has, hi)
	}
	for _, window := range []int{256, 64} {
		to := newTable(t, window, 0).Attach("agent")
		to.MergeDurable(hi, bits)
		check(t, to, 297, &a, Durable)
		check(t, to, 250, &a, Durable)
		check(t, to, 298, &a, Store)
		check(t, to, 299, &a, Store)
		check(t, to, 301, &a, Store)
	}
	if has, _, _ := newTable(t, 64, 0).Attach("new").Durable(); has {
		t.Fatal("a client with no seq says it has a window")
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
