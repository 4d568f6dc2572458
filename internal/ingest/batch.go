package ingest

import "time"

// Batch is the reports of one read of one connection, encoded as record lines, and
// their seqs. The zero value is empty and ready; Reset empties it for reuse without
// giving up its buffers.
type Batch struct {
	lines []byte
	seqs  []uint64
	// The reports of one read share their receive time: formatting it once per
	// batch, not once per report, is a third of the cost of encoding a small record.
	stampOf time.Time
	stamp   []byte
}

// Add appends r as one record line and its seq. It does not allocate once the
// batch's buffers have grown to their working size.
func (b *Batch) Add(r *Record) {
	if len(b.stamp) == 0 || !r.Received.Equal(b.stampOf) {
		b.stampOf = r.Received
		b.stamp = appendStamp(b.stamp[:0], r.Received)
	}
	b.lines = appendRecord(b.lines, r, b.stamp)
	b.seqs = append(b.seqs, r.Seq)
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
	b.lines, b.seqs, b.stamp = b.lines[:0], b.seqs[:0], b.stamp[:0]
}
