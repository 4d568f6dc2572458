package dedup

import (
	"testing"
)

// bitmaps is what c holds: whether its durable and pending bitmaps exist.
func bitmaps(c *Client) (durable, pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.durable != nil, c.pending != nil
}

// A connected client holds a bitmap only for what it needs: none before its first
// report, the pending one only until an idle heartbeat releases it with nothing
// pending; its durable seqs outlive the release.
func TestBitmapsOnlyWhenNeeded(t *testing.T) {
	tb := newTable(t, 64, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	if d, p := bitmaps(c); d || p {
		t.Fatalf("attached client before any report holds durable %v, pending %v; want neither", d, p)
	}
	var w answers
	check(t, c, 7, &w, Store)
	c.Release() // 7 is pending: kept
	if d, p := bitmaps(c); !d || !p {
		t.Fatalf("with a report pending: durable %v, pending %v; want both", d, p)
	}
	check(t, c, 7, &w, Pending)
	c.Committed([]uint64{7}, nil)
	c.Release()
	if d, p := bitmaps(c); !d || p {
		t.Fatalf("after the commit and Release: durable %v, pending %v; want durable only", d, p)
	}
	check(t, c, 7, &w, Durable)
	check(t, c, 8, &w, Store) // allocates the pending bitmap again
	check(t, c, 8, &w, Pending)
}

// Once attached and reporting, the steady path allocates nothing per report.
func TestCheckCommitSteadyAllocatesNothing(t *testing.T) {
	tb := newTable(t, 4096, 10)
	c := tb.Attach("a")
	defer tb.Detach(c)
	var w answers
	seq := uint64(1)
	check(t, c, seq, &w, Store)
	c.Committed([]uint64{seq}, nil)
	seqs := []uint64{0}
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		seqs[0] = seq
		c.Check(seq, &w)
		c.Committed(seqs, nil)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per report, want 0", allocs)
	}
}

// AttachKnown holds only a client the table remembers; an unknown one costs nothing
// until Attach, at its first report.
func TestAttachKnown(t *testing.T) {
	tb := newTable(t, 64, 10)
	if c := tb.AttachKnown("new"); c != nil {
		t.Fatalf("AttachKnown of an unknown client = %p, want nil", c)
	}
	if c := tb.Lookup("new"); c != nil {
		t.Fatalf("AttachKnown made a client: Lookup = %p", c)
	}
	tb.MarkDurable([]byte("old"), 5)
	c := tb.AttachKnown("old")
	if c == nil || c != tb.Lookup("old") {
		t.Fatalf("AttachKnown(old) = %p, Lookup = %p: want the remembered client", c, tb.Lookup("old"))
	}
	defer tb.Detach(c)
	if c.refs.Load() != 1 {
		t.Fatalf("refs = %d after AttachKnown, want 1 (held against eviction)", c.refs.Load())
	}
	check(t, c, 5, &answers{}, Durable)
}

// AttachKnownBytes is AttachKnown for a byte slice: the same client, held, and
// never a new one.
func TestAttachKnownBytes(t *testing.T) {
	tb := newTable(t, 64, 10)
	if c := tb.AttachKnownBytes([]byte("new")); c != nil || tb.Lookup("new") != nil {
		t.Fatalf("AttachKnownBytes of an unknown client = %p, or made one", c)
	}
	tb.MarkDurable([]byte("old"), 5)
	id := []byte("old")
	c := tb.AttachKnownBytes(id)
	if c == nil || c != tb.Lookup("old") || c.refs.Load() != 1 {
		t.Fatalf("AttachKnownBytes(old) = %p, want the remembered client, held", c)
	}
	defer tb.Detach(c)
	id[0] = 'x' // the caller's buffer is reused: the client's id is the table's own
	if c.ID() != "old" {
		t.Fatalf("ID = %q after the caller's bytes changed", c.ID())
	}
}
