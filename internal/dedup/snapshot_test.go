package dedup

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// filled is a table of window w with clients whose windows differ: sparse and
// dense durable seqs, a window that jumped, pending seqs (not passed on), a
// client that only connected (no seq: not passed on), and one at the top seq.
func filled(t testing.TB, w int) *Table {
	t.Helper()
	tb, err := New(Options{Window: w})
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		c := tb.Attach(string(rune('a'+i%26)) + "-" + string(rune('0'+i/26)))
		base := rng.Uint64N(1 << 40)
		for s := base; s < base+uint64(rng.IntN(3*w)); s++ {
			if c.Check(s, nil) == Store && rng.IntN(4) != 0 {
				c.Committed([]uint64{s}, nil) // the rest stay pending
			}
		}
		tb.Detach(c)
	}
	tb.Attach("only-connected")
	top := tb.Attach("top")
	for _, s := range []uint64{^uint64(0) - 5, ^uint64(0)} {
		top.Check(s, nil)
		top.Committed([]uint64{s}, nil)
	}
	return tb
}

func snapshotOf(t testing.TB, tb *Table, m Mark) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := tb.WriteSnapshot(&buf, m)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(buf.Len()) {
		t.Fatalf("stats say %d bytes, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes()
}

var testMark = Mark{Segment: segName(3, 4242), Offset: 12345}

// The receiving table knows durable exactly what the sender did, and nothing
// pending, as if every client had been handed over (MergeDurable of Durable).
func TestSnapshotRoundTrip(t *testing.T) {
	for _, w := range [][2]int{{4096, 4096}, {1024, 1024}, {4096, 1024}, {64, 64}} {
		from := filled(t, w[0])
		data := snapshotOf(t, from, testMark)
		s, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("window %d: %v", w[0], err)
		}
		if s.Mark != testMark || s.Window != w[0] || s.Bytes != int64(len(data)) {
			t.Fatalf("read mark %+v window %d bytes %d", s.Mark, s.Window, s.Bytes)
		}
		to, _ := New(Options{Window: w[1]})
		to.ApplySnapshot(s)
		want, _ := New(Options{Window: w[1]})
		n := 0
		from.mu.Lock()
		ids := make([]string, 0, len(from.clients))
		for id := range from.clients {
			ids = append(ids, id)
		}
		from.mu.Unlock()
		for _, id := range ids {
			if has, hi, win := from.Lookup(id).Durable(); has {
				want.Attach(id).MergeDurable(hi, win)
				n++
			}
		}
		if s.Clients() != n || to.Len() != n {
			t.Fatalf("window %d: %d clients in the snapshot, %d applied, %d with a seq", w[0], s.Clients(), to.Len(), n)
		}
		for _, id := range ids {
			c, wc := to.Lookup(id), want.Lookup(id)
			if (c == nil) != (wc == nil) {
				t.Fatalf("client %q: received %v, want %v", id, c != nil, wc != nil)
			}
			if c == nil {
				continue
			}
			h1, hi1, w1 := c.Durable()
			h2, hi2, w2 := wc.Durable()
			if h1 != h2 || hi1 != hi2 || !slices.Equal(w1, w2) {
				t.Fatalf("window %d -> %d, client %q: received hi %d, want %d (windows equal: %v)", w[0], w[1], id, hi1, hi2, slices.Equal(w1, w2))
			}
			if c.npending != 0 {
				t.Fatalf("client %q: %d pending after a snapshot", id, c.npending)
			}
		}
	}
}

// Any snapshot cut short, or with any byte changed, is refused whole.
func TestSnapshotShortOrDamaged(t *testing.T) {
	data := snapshotOf(t, filled(t, 64), testMark)
	for n := range len(data) {
		if _, err := ReadSnapshot(bytes.NewReader(data[:n])); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes was read", n, len(data))
		}
	}
	for i := range data {
		bad := slices.Clone(data)
		bad[i] ^= 0x5a
		if _, err := ReadSnapshot(bytes.NewReader(bad)); err == nil {
			t.Fatalf("a snapshot with byte %d changed was read", i)
		}
	}
	if _, err := ReadSnapshot(bytes.NewReader(nil)); err == nil {
		t.Fatal("an empty pipe was read as a snapshot")
	}
}

func TestSnapshotRefusesABadMark(t *testing.T) {
	tb := filled(t, 64)
	for _, m := range []Mark{{}, {Segment: segName(1, 1), Offset: -1}} {
		if _, err := tb.WriteSnapshot(&bytes.Buffer{}, m); err == nil {
			t.Errorf("mark %+v written", m)
		}
	}
	// A name that is no segment's (a path, say) is refused when read.
	data := snapshotOf(t, tb, Mark{Segment: "../../etc/passwd" + segName(1, 1)[16:], Offset: 1})
	if _, err := ReadSnapshot(bytes.NewReader(data)); err == nil {
		t.Fatal("a mark that is not a segment name was read")
	}
}

func TestFollowFromTheMark(t *testing.T) {
	dir := t.TempDir()
	const parent, other = 4242, 99
	writeSeg(t, dir, segName(1, other), record("o", 1, `1`))
	writeSeg(t, dir, segName(2, parent), record("a", 1, `1`), record("a", 2, `1`)) // closed before the mark
	before := record("a", 3, `1`)
	writeSeg(t, dir, segName(3, parent), before, record("a", 4, `1`)) // the mark's, after "before"
	writeSeg(t, dir, segName(4, parent), record("a", 5, `1`))         // created after the mark
	m := Mark{Segment: segName(3, parent), Offset: int64(len(before))}
	segs, err := FollowFrom(dir, parent, m)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := New(Options{Window: 64})
	_, err = tb.Follow(context.Background(), dir, parent, segs, 1, func(int) bool { return false }, tb.SetReady)
	if err != nil {
		t.Fatal(err)
	}
	// Seqs 1 to 3 are the snapshot's to tell (this one told nothing), 4 and 5 the
	// follow's; the other process's segment is not read.
	verdicts(t, tb, "a", map[uint64]Verdict{1: Store, 2: Store, 3: Store, 4: Durable, 5: Durable})
	verdicts(t, tb, "o", map[uint64]Verdict{1: Store})

	if _, err := FollowFrom(dir, other, m); err == nil {
		t.Error("a mark of another pid followed")
	}
	if _, err := FollowFrom(dir, parent, Mark{Segment: segName(9, parent), Offset: 10}); err == nil {
		t.Error("a mark whose segment is gone, with lines before it, followed")
	}
	// An empty segment goes with its process's exit: nothing to read from it.
	segs, err = FollowFrom(dir, parent, Mark{Segment: segName(9, parent)})
	if err != nil || len(segs) != 3 {
		t.Fatalf("an empty mark's segment gone: %d segments, %v", len(segs), err)
	}
	for _, f := range segs {
		if fi, err := os.Stat(filepath.Join(dir, f.name)); err != nil || f.off != fi.Size() {
			t.Errorf("%s: from %d, want its end", f.name, f.off)
		}
	}
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add(snapshotOf(f, filled(f, 64), testMark))
	small, _ := New(Options{Window: 64})
	small.SetReady()
	c := small.Attach("x")
	c.Check(3, nil)
	c.Committed([]uint64{3}, nil)
	f.Add(snapshotOf(f, small, testMark))
	f.Add([]byte("HWKD"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		if s.Bytes > int64(len(data)) || len(s.words)*8 > len(data) {
			t.Fatalf("read %d bytes, %d words, from %d", s.Bytes, len(s.words), len(data))
		}
		if ValidWindow(s.Window) != nil {
			t.Fatalf("window %d", s.Window)
		}
		for _, w := range []int{64, 4096} {
			tb, _ := New(Options{Window: w})
			tb.ApplySnapshot(s)
			if tb.Len() > s.Clients() {
				t.Fatalf("%d clients from a snapshot of %d", tb.Len(), s.Clients())
			}
		}
	})
}

// BenchmarkSnapshot is the passing of n clients' windows, each with 1,000 seqs
// durable: the old process's write, and the new one's read and apply.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		tb, _ := New(Options{})
		tb.SetReady()
		seqs := make([]uint64, 1000)
		for i := range n {
			c := tb.Attach("client-" + strconv.Itoa(i))
			for s := range seqs {
				seqs[s] = uint64(s)
				c.Check(uint64(s), nil)
			}
			c.Committed(seqs, nil)
			tb.Detach(c)
		}
		var buf bytes.Buffer
		if _, err := tb.WriteSnapshot(&buf, testMark); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run("write/clients="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := tb.WriteSnapshot(io.Discard, testMark); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("read+apply/clients="+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				s, err := ReadSnapshot(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				to, _ := New(Options{})
				to.ApplySnapshot(s)
			}
		})
	}
}
