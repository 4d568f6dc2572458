package dedup

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// Verdict is what Check decides about one report.
type Verdict uint8

const (
	// Store: not known to be durable or pending; store it (it is now pending).
	Store Verdict = iota
	// Durable: already durable; ACK it again, store nothing.
	Durable
	// Pending: a copy is on its way to the destination; store nothing, the Waiter
	// is answered when that copy's commit is known.
	Pending
)

func (v Verdict) String() string {
	switch v {
	case Store:
		return "store"
	case Durable:
		return "durable"
	case Pending:
		return "pending"
	}
	return "?"
}

// Waiter is answered for a report Check found Pending, once the commit of the
// copy already pending is known: err == nil means durable (ACK), otherwise the
// copy was not stored (NACK, retryable).
type Waiter interface {
	Answer(seq uint64, err error)
}

type waiting struct {
	seq uint64
	w   Waiter
}

// Client is one client_id's window. Its methods are safe for concurrent use.
type Client struct {
	t  *Table
	id string

	mu       sync.Mutex
	has      bool     // hi is set: some seq was seen
	hi       uint64   // the highest seq seen, durable or pending
	durable  []uint64 // nil until a seq is seen
	pending  []uint64 // nil while nothing is pending (Release) or detached with nothing pending
	npending int
	waiters  []waiting

	refs atomic.Int32 // connections holding c
	used int64        // the table's clock at the last Attach or Detach; under t.mu
}

// ID is the client_id.
func (c *Client) ID() string { return c.id }

// slot is the bitmap word and bit of seq s.
func (c *Client) slot(s uint64) (int, uint64) {
	i := s & (c.t.window - 1)
	return int(i >> 6), 1 << (i & 63)
}

// inWindowLocked reports whether s is within the window below hi.
func (c *Client) inWindowLocked(s uint64) bool {
	return c.has && s <= c.hi && c.hi-s < c.t.window
}

// advanceLocked moves the window up so that s is its highest seq, forgetting the
// seqs that fall out of it (a pending one among them stays pending for its Waiter,
// but its commit will no longer mark anything).
func (c *Client) advanceLocked(s uint64) {
	if !c.has {
		c.has, c.hi = true, s
		c.durable = make([]uint64, c.t.words())
		return
	}
	if n := s - c.hi; n >= c.t.window {
		clear(c.durable)
		for _, w := range c.pending {
			c.npending -= bits.OnesCount64(w)
		}
		clear(c.pending)
	} else {
		// By distance, not x <= s: s may be the largest seq, and x++ would wrap.
		for d := uint64(1); d <= n; d++ {
			w, m := c.slot(c.hi + d)
			c.durable[w] &^= m
			if c.pending != nil && c.pending[w]&m != 0 {
				c.pending[w] &^= m
				c.npending--
			}
		}
	}
	c.hi = s
}

func (c *Client) setPendingLocked(s uint64) {
	if c.pending == nil {
		c.pending = make([]uint64, c.t.words())
	}
	w, m := c.slot(s)
	c.pending[w] |= m
	c.npending++
}

// Check decides what to do with a report of this client with seq s (see Verdict).
// Until the table is ready (its rebuild is done) it waits. w is kept, and answered
// later, only when the verdict is Pending.
func (c *Client) Check(s uint64, w Waiter) Verdict {
	if !c.t.ready.Load() {
		<-c.t.readyCh
	}
	v := Store
	c.mu.Lock()
	switch {
	case !c.has || s > c.hi:
		c.advanceLocked(s)
		c.setPendingLocked(s)
	case c.hi-s >= c.t.window:
		// Older than the window: unknown, stored, not tracked.
	default:
		word, m := c.slot(s)
		switch {
		case c.durable[word]&m != 0:
			v = Durable
		case c.pending != nil && c.pending[word]&m != 0:
			v = Pending
			c.waiters = append(c.waiters, waiting{s, w})
		default:
			c.setPendingLocked(s)
		}
	}
	c.mu.Unlock()
	if v != Store {
		c.t.duplicates.Add(1)
	}
	return v
}

// Committed records the outcome of a commit holding these seqs of this client
// (each one Check said Store for): durable when err is nil, otherwise no longer
// pending (a resend will be stored). Waiters for these seqs are answered, outside
// the lock.
func (c *Client) Committed(seqs []uint64, err error) {
	var answerBuf [8]waiting
	answer := answerBuf[:0]
	c.mu.Lock()
	for _, s := range seqs {
		if !c.inWindowLocked(s) {
			continue
		}
		w, m := c.slot(s)
		if c.pending != nil && c.pending[w]&m != 0 {
			c.pending[w] &^= m
			c.npending--
		}
		if err == nil {
			c.durable[w] |= m
		}
	}
	if len(c.waiters) > 0 {
		kept := c.waiters[:0]
		for _, wt := range c.waiters {
			if containsSeq(seqs, wt.seq) {
				answer = append(answer, wt)
			} else {
				kept = append(kept, wt)
			}
		}
		clear(c.waiters[len(kept):])
		c.waiters = kept
		if len(kept) == 0 {
			c.waiters = nil
		}
	}
	if c.npending == 0 && c.refs.Load() == 0 {
		c.pending = nil
	}
	c.mu.Unlock()
	for _, wt := range answer {
		wt.w.Answer(wt.seq, err)
	}
}

func containsSeq(seqs []uint64, s uint64) bool {
	for _, x := range seqs {
		if x == s {
			return true
		}
	}
	return false
}

// markDurable records s as durable, found in the spool (rebuild, follow).
func (c *Client) markDurable(s uint64) {
	c.mu.Lock()
	if !c.has || s > c.hi {
		c.advanceLocked(s)
	}
	if c.inWindowLocked(s) {
		w, m := c.slot(s)
		c.durable[w] |= m
	}
	c.mu.Unlock()
}

// Release gives back the pending bitmap when nothing is pending: a connection calls
// it when it is idle (on a heartbeat), so that an idle agent costs its durable window
// only; the next report allocates the bitmap again, once, not per report.
func (c *Client) Release() {
	c.mu.Lock()
	if c.npending == 0 {
		c.pending = nil
	}
	c.mu.Unlock()
}

// idle reports whether c may be forgotten: no connection, nothing pending.
func (c *Client) idle() bool {
	if c.refs.Load() != 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.npending == 0 && len(c.waiters) == 0
}

// Durable returns the window as the handoff carries it (internal/handoff): has
// says whether any seq was seen, hi is the highest, and bit i of bits (word i/64)
// is set when seq hi-i is durable. Relative to hi, so a process with another
// dedup.window reads it right (MergeDurable). Word by word: it runs on each
// connection's reader at its quiet point.
func (c *Client) Durable() (has bool, hi uint64, win []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.has {
		return false, 0, nil
	}
	win = make([]uint64, len(c.durable))
	c.durableIntoLocked(win)
	return true, c.hi, win
}

// durableIntoLocked writes Durable's bits into win (len(c.durable) words, zeroed).
// Caller holds c.mu and c.has is set.
func (c *Client) durableIntoLocked(win []uint64) {
	lim := min(c.t.window, seqsTo(c.hi)) // bits i >= lim are not seqs of the window
	for k := range win {
		i := uint64(k) * 64
		if i >= lim {
			break
		}
		// Bit j of word k is seq hi-i-j: the 64 slots ending at slot(hi-i),
		// reversed.
		win[k] = bits.Reverse64(c.durableSpan((c.hi-i-63)&(c.t.window-1))) & lowBits(lim-i)
	}
}

// durableSpan is the 64 bits of the durable bitmap from slot p on, wrapping at
// the window's end.
func (c *Client) durableSpan(p uint64) uint64 {
	w, off := p>>6, p&63
	x := c.durable[w] >> off
	if off != 0 {
		x |= c.durable[(int(w)+1)%len(c.durable)] << (64 - off)
	}
	return x
}

// seqsTo is how many seqs there are from 0 to hi, saturating.
func seqsTo(hi uint64) uint64 { return max(hi+1, hi) }

// lowBits is a mask of the n lowest bits (all of them from 64 on).
func lowBits(n uint64) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// MergeDurable marks durable what another process's Durable returned: the seqs of
// a connection handed over, acknowledged by the old process. As one markDurable
// per seq set, from the highest, would: the window moves up to the highest seq
// set, and seqs below the window are ignored; but under one lock and a word at a
// time, since the new process adopts each connection of a batch in turn before it
// acknowledges the batch.
func (c *Client) MergeDurable(hi uint64, in []uint64) {
	// The highest seq set is hi less the lowest bit set.
	first := -1
	for k, w := range in {
		if w != 0 {
			first = k*64 + bits.TrailingZeros64(w)
			break
		}
	}
	if first < 0 || uint64(first) > hi {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if top := hi - uint64(first); !c.has || top > c.hi {
		c.advanceLocked(top)
	}
	// Seq hi-i is in the window for i < lim: i <= hi, and hi-i above c.hi-window
	// (none above c.hi is set).
	lim := min(uint64(len(in))*64, seqsTo(hi))
	if c.hi >= hi {
		if c.hi-hi >= c.t.window {
			return // every seq set is below the window
		}
		lim = min(lim, c.t.window-(c.hi-hi))
	} else {
		lim = min(lim, c.t.window+(hi-c.hi))
	}
	for k, w := range in {
		i := uint64(k) * 64
		if i >= lim {
			break
		}
		if w &= lowBits(lim - i); w == 0 {
			continue
		}
		// Bit j of w is seq hi-i-j: reversed, the 64 slots ending at slot(hi-i).
		p := (hi - i - 63) & (c.t.window - 1)
		r := bits.Reverse64(w)
		word, off := p>>6, p&63
		c.durable[word] |= r << off
		if off != 0 {
			c.durable[(int(word)+1)%len(c.durable)] |= r >> (64 - off)
		}
	}
}
