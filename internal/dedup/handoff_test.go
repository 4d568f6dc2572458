package dedup

import (
	"errors"
	"math/rand/v2"
	"slices"
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

// durableBySeq and mergeBySeq are Durable and MergeDurable one seq at a time: the
// definition the word-at-a-time versions must match.
func durableBySeq(c *Client) (bool, uint64, []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.has {
		return false, 0, nil
	}
	out := make([]uint64, len(c.durable))
	for i := uint64(0); i < c.t.window && i <= c.hi; i++ {
		w, m := c.slot(c.hi - i)
		if c.durable[w]&m != 0 {
			out[i>>6] |= 1 << (i & 63)
		}
	}
	return true, c.hi, out
}

func mergeBySeq(c *Client, hi uint64, in []uint64) {
	for i := uint64(0); i < uint64(len(in))*64 && i <= hi; i++ {
		if in[i>>6]&(1<<(i&63)) != 0 {
			c.markDurable(hi - i)
		}
	}
}

// Durable and MergeDurable agree with their seq-by-seq definitions over windows
// of every size on both sides, seqs near 0 and the top of the range, and targets
// whose window is above, below, far from or the same as the source's.
func TestDurableAndMergeMatchSeqBySeq(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	windows := []int{64, 128, 256, 4096}
	his := []uint64{0, 1, 5, 63, 64, 65, 100, 300, 5000, 1 << 40, 1<<64 - 1}
	for n := range 3000 {
		sw, dw := windows[rng.IntN(len(windows))], windows[rng.IntN(len(windows))]
		src := newTable(t, sw, 0).Attach("a")
		shi := his[rng.IntN(len(his))] - uint64(rng.IntN(3))
		fill(rng, src, shi, sw)
		has, hi, got := src.Durable()
		wantHas, wantHi, want := durableBySeq(src)
		if has != wantHas || hi != wantHi || !slices.Equal(got, want) {
			t.Fatalf("case %d: Durable of window %d, hi %d: %v %d %x, want %v %d %x", n, sw, shi, has, hi, got, wantHas, wantHi, want)
		}
		if !has {
			continue
		}
		a, b := newTable(t, dw, 0).Attach("a"), newTable(t, dw, 0).Attach("a")
		if rng.IntN(4) > 0 { // a target that already knows the client
			dhi := hi + uint64(rng.IntN(3*dw)) - uint64(rng.IntN(3*dw))
			seed := rng.Uint64()
			fill(rand.New(rand.NewPCG(seed, 0)), a, dhi, dw)
			fill(rand.New(rand.NewPCG(seed, 0)), b, dhi, dw)
		}
		a.MergeDurable(hi, got)
		mergeBySeq(b, hi, got)
		if a.has != b.has || a.hi != b.hi || !slices.Equal(a.durable, b.durable) {
			t.Fatalf("case %d: merge of window %d hi %d into window %d: has %v hi %d %x, want has %v hi %d %x",
				n, sw, hi, dw, a.has, a.hi, a.durable, b.has, b.hi, b.durable)
		}
	}
}

// fill marks durable a random part of the window of w seqs ending at hi.
func fill(rng *rand.Rand, c *Client, hi uint64, w int) {
	density := rng.Float64()
	for i := uint64(0); i < uint64(w) && i <= hi; i++ {
		if i == 0 || rng.Float64() < density {
			c.markDurable(hi - i)
		}
	}
}

// BenchmarkDurableMerge is one handed-over connection's window: Durable on the old
// process's reader at the quiet point, MergeDurable in the new process's receiver
// (which adopts a batch's connections one after the other), at the default window
// with 3,000 seqs seen.
//
//	go test -run x -bench DurableMerge -benchmem ./internal/dedup/
func BenchmarkDurableMerge(b *testing.B) {
	src := newTable(b, DefaultWindow, 0).Attach("agent")
	for s := uint64(1); s <= 3000; s++ {
		src.markDurable(s)
	}
	_, hi, win := src.Durable()
	b.Run("durable", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			src.Durable()
		}
	})
	b.Run("merge", func(b *testing.B) {
		dst := newTable(b, DefaultWindow, 0).Attach("agent")
		b.ReportAllocs()
		for b.Loop() {
			dst.MergeDurable(hi, win)
		}
	})
}
