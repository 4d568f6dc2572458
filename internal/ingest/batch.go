package ingest

import (
	"net/netip"
	"strconv"
	"time"
)

// Batch is the reports of one read of one connection, encoded as record lines, and
// their seqs. The zero value is empty and ready; Reset empties it for reuse without
// giving up its buffers.
type Batch struct {
	lines []byte
	seqs  []uint64

	// The reports of one read share all of their line but the seq and the payload.
	// The text of the last line's head (appendHead), middle (appendMiddle) and seq
	// is kept with what it was made of, and appended again while that stays the
	// same: formatting the receive time once per batch, not once per report, was a
	// third of the cost of encoding a small record, and the client id's escaping and
	// the conn_id's digits were most of the rest. The keys are compared by value,
	// so the text stays valid across Reset and from one connection to the next.
	head    []byte
	headOf  string // the client id
	stamp   []byte
	stampOf time.Time
	sec     []byte // stamp up to its seconds, for the Unix second secOf
	secOf   int64
	mid     []byte // holds stamp, so it is made again whenever stamp is
	midOf   midKey
	seqOf   uint64

	// pre is head, the seq's digits (pre[seqAt:seqEnd]) and mid: the line up to
	// its payload, appended with one copy, its digits counted up in place.
	pre           []byte
	seqAt, seqEnd int
}

// midKey is what a line's middle is made of besides the receive time.
type midKey struct {
	connID           uint64
	listener, format string
	source           netip.AddrPort
}

// Add appends r as one record line and its seq. It does not allocate once the
// batch's buffers have grown to their working size.
func (b *Batch) Add(r *Record) {
	made := false // pre is to be made again
	if len(b.head) == 0 || r.ClientID != b.headOf {
		b.headOf = r.ClientID
		b.head = appendHead(b.head[:0], r.ClientID)
		made = true
	}
	if len(b.stamp) == 0 || !r.Received.Equal(b.stampOf) {
		b.stampOf = r.Received
		b.formatStamp(r.Received)
		b.mid = b.mid[:0]
	}
	if len(b.mid) == 0 || !b.midOf.of(r) {
		b.midOf = midKey{r.ConnID, r.Listener, r.Format, r.Source}
		b.mid = appendMiddle(b.mid[:0], r, b.stamp)
		made = true
	}
	// A read's reports mostly carry consecutive seqs: the last seq's digits are
	// counted up rather than formatted again.
	if made || r.Seq != b.seqOf+1 || r.Seq == 0 || !increment(b.pre[b.seqAt:b.seqEnd]) {
		b.pre = append(b.pre[:0], b.head...)
		b.seqAt = len(b.pre)
		b.pre = strconv.AppendUint(b.pre, r.Seq, 10)
		b.seqEnd = len(b.pre)
		b.pre = append(b.pre, b.mid...)
	}
	b.seqOf = r.Seq
	b.lines = append(b.lines, b.pre...)
	b.lines = appendPayload(b.lines, r.Payload)
	b.seqs = append(b.seqs, r.Seq)
}

// of reports whether r's line has the middle k was made of. Field by field, the
// cheap and likely different first: the generated equality of two midKeys is a
// call, and this runs per report.
func (k *midKey) of(r *Record) bool {
	return k.connID == r.ConnID && k.source == r.Source && sameString(k.listener, r.Listener) && sameString(k.format, r.Format)
}

// sameString is a == b without a call for two empty strings (a native report's
// listener and format).
func sameString(a, b string) bool { return len(a) == len(b) && (len(a) == 0 || a == b) }

// formatStamp sets stamp to t's text, as appendStamp formats it. Reads are
// microseconds apart: the text up to the seconds is kept, and only the fraction
// is formatted per read, for a fraction of what time.Time.AppendFormat costs
// (BenchmarkStamp).
func (b *Batch) formatStamp(t time.Time) {
	u := t.UTC()
	if s := u.Unix(); len(b.sec) == 0 || s != b.secOf {
		b.secOf = s
		b.sec = u.AppendFormat(b.sec[:0], "2006-01-02T15:04:05")
	}
	b.stamp = append(b.stamp[:0], b.sec...)
	b.stamp = appendFraction(b.stamp, u.Nanosecond())
	b.stamp = append(b.stamp, 'Z')
}

// appendFraction appends ns, a fraction of a second in nanoseconds, as
// time.RFC3339Nano has it: a dot and up to nine digits without trailing zeros, or
// nothing for 0.
func appendFraction(dst []byte, ns int) []byte {
	if ns == 0 {
		return dst
	}
	var d [10]byte
	d[0] = '.'
	for i := 9; i > 0; i-- {
		d[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := len(d)
	for d[n-1] == '0' {
		n--
	}
	return append(dst, d[:n]...)
}

// increment adds one to the decimal number d in place. It returns false, with d
// spoiled, when the sum needs one more digit than d has.
func increment(d []byte) bool {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return true
		}
		d[i] = '0'
	}
	return false
}

// Len is the number of reports in the batch.
func (b *Batch) Len() int { return len(b.seqs) }

// Lines is the batch's record lines, one per report, in the order they were added.
// It is valid until the next Add or Reset.
func (b *Batch) Lines() []byte { return b.lines }

// Seqs is the batch's seqs: Seqs()[i] is the seq of the i-th line. It is valid
// until the next Add or Reset.
func (b *Batch) Seqs() []uint64 { return b.seqs }

// Reset empties the batch. Buffers grown past maxKept (a burst of huge reports)
// are dropped rather than kept for the next batch.
func (b *Batch) Reset() {
	const maxKept = 256 << 10
	if cap(b.lines) > maxKept {
		b.lines = nil
	}
	b.lines, b.seqs = b.lines[:0], b.seqs[:0]
}
