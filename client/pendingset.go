package client

// pendingSet is the outbox's unfinished reports by seq. Seqs are handed out in
// order and most reports finish within a window of the newest, so the recent ones
// live in a ring indexed by seq: adding, finding and removing a report is an index
// and a compare, where a map hashed the seq three times per report (a tenth of
// the load generator's CPU). A report left far behind (waiting out a long retry
// backoff while thousands of newer ones come and go) moves to a small map rather
// than making the ring grow without bound.
type pendingSet struct {
	ring []*pending // len is a power of two; ring[seq&mask] for seq in [lo, next)
	lo   uint64     // every seq below lo is in old, or finished
	next uint64     // the seq the next add gives; nothing at or above it is pending
	n    int        // reports in ring
	old  map[uint64]*pending
}

// maxPendingRing bounds the ring (entries); past it the oldest report moves to
// the map instead of the ring doubling.
const maxPendingRing = 1 << 14

func newPendingSet(firstSeq uint64, window int) pendingSet {
	size := 16
	for size < 2*window && size < maxPendingRing {
		size *= 2
	}
	return pendingSet{ring: make([]*pending, size), lo: firstSeq, next: firstSeq}
}

func (p *pendingSet) len() int { return p.n + len(p.old) }

func (p *pendingSet) get(seq uint64) *pending {
	switch {
	case seq >= p.next:
		return nil
	case seq >= p.lo:
		return p.ring[seq&uint64(len(p.ring)-1)]
	default:
		return p.old[seq] // nil map: nil
	}
}

// add keeps rec, whose seq must be p.next (seqs are added in order).
func (p *pendingSet) add(rec *pending) {
	if p.next-p.lo == uint64(len(p.ring)) {
		p.makeRoom()
	}
	p.ring[rec.seq&uint64(len(p.ring)-1)] = rec
	p.n++
	p.next++
}

// makeRoom frees the ring slot of seq p.next: the ring spans a whole ring's worth
// of seqs, and its oldest one is still pending.
func (p *pendingSet) makeRoom() {
	if len(p.ring) < maxPendingRing {
		bigger := make([]*pending, 2*len(p.ring))
		for s := p.lo; s < p.next; s++ {
			bigger[s&uint64(len(bigger)-1)] = p.ring[s&uint64(len(p.ring)-1)]
		}
		p.ring = bigger
		return
	}
	i := p.lo & uint64(len(p.ring)-1)
	if p.old == nil {
		p.old = make(map[uint64]*pending)
	}
	p.old[p.lo] = p.ring[i]
	p.ring[i] = nil
	p.n--
	p.lo++
	p.skipFinished()
}

// skipFinished moves lo past the finished seqs at the ring's start.
func (p *pendingSet) skipFinished() {
	for p.lo < p.next && p.ring[p.lo&uint64(len(p.ring)-1)] == nil {
		p.lo++
	}
}

// remove forgets the report with this seq (it must be pending).
func (p *pendingSet) remove(seq uint64) {
	p.drop(seq)
	if seq == p.lo {
		p.skipFinished()
	}
}

// drop is remove without moving lo past the finished seqs at the ring's start:
// for a run of removes, followed by one skipFinished. Until then lo may name a
// finished seq, which get reports as nil, as it should; add must not be called
// in between (makeRoom takes the seq at lo for pending).
func (p *pendingSet) drop(seq uint64) {
	if seq < p.lo {
		delete(p.old, seq)
		return
	}
	p.ring[seq&uint64(len(p.ring)-1)] = nil
	p.n--
}

// all calls f with every pending report, in no particular order.
func (p *pendingSet) all(f func(*pending)) {
	for _, r := range p.old {
		f(r)
	}
	for s := p.lo; s < p.next; s++ {
		if r := p.ring[s&uint64(len(p.ring)-1)]; r != nil {
			f(r)
		}
	}
}
