package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// AckModeRange is the HELLO and WELCOME `ack` value of range acknowledgements: the
// server answers durable reports with ACK_RANGE frames, each acknowledging runs of
// consecutive seqs, instead of one ACK frame per report (PROTOCOL.md 4.5).
const AckModeRange = "range"

// An ACK_RANGE payload is 1..MaxAckRanges ranges of AckRangeSize bytes: the first
// and the last seq of the range (both included, first <= last), big-endian uint64s,
// and a range covers at most MaxAckRangeSpan seqs. The frame's seq is 0.
const (
	AckRangeSize    = 16
	MaxAckRanges    = MaxServerPayload / AckRangeSize
	MaxAckRangeSpan = 1 << 16
)

// AckRanges is a checked ACK_RANGE payload; it aliases the frame's bytes.
type AckRanges []byte

// ParseAckRanges checks an ACK_RANGE payload without allocating (except for the
// error): its size, and that each range is ordered and within MaxAckRangeSpan.
func ParseAckRanges(p []byte) (AckRanges, error) {
	if len(p) == 0 || len(p)%AckRangeSize != 0 || len(p) > MaxAckRanges*AckRangeSize {
		return nil, &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("ACK_RANGE payload of %d bytes is not 1..%d ranges of %d bytes", len(p), MaxAckRanges, AckRangeSize)}
	}
	r := AckRanges(p)
	for i := range r.Len() {
		if first, last := r.At(i); last < first || last-first >= MaxAckRangeSpan {
			return nil, &DecodeError{Code: CodeBadPayload, Msg: fmt.Sprintf("ACK_RANGE range %d is %d..%d: want first <= last, at most %d seqs", i, first, last, MaxAckRangeSpan)}
		}
	}
	return r, nil
}

// Len is the number of ranges.
func (r AckRanges) Len() int { return len(r) / AckRangeSize }

// At returns range i: its first and last seq, both included.
func (r AckRanges) At(i int) (first, last uint64) {
	b := r[i*AckRangeSize:]
	return binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
}

// AppendAckRanges acknowledges seqs (in any order) in ACK_RANGE frames appended to
// dst, allocation-free once dst has room. at is the offset in dst of an ACK_RANGE
// frame this function appended earlier, or -1: when that frame still ends dst,
// seqs extend it (its last range, or new ranges while it has room) instead of
// starting a new frame, so the answers queued before one write share one frame.
// It returns dst, the offset of the ACK_RANGE frame that now ends it, and how many
// frames it started.
func AppendAckRanges(dst []byte, at int, seqs []uint64) ([]byte, int, int) {
	frames := 0
	if at < 0 || at+HeaderSize > len(dst) || at+Needed(dst[at:]) != len(dst) || Type(dst[at+3]) != TypeAckRange {
		at = -1
	}
	for _, s := range seqs {
		if at >= 0 {
			n := int(binary.BigEndian.Uint32(dst[at+4:]))
			lastAt := at + HeaderSize + n - AckRangeSize
			first, last := binary.BigEndian.Uint64(dst[lastAt:]), binary.BigEndian.Uint64(dst[lastAt+8:])
			if last != math.MaxUint64 && s == last+1 && s-first < MaxAckRangeSpan {
				binary.BigEndian.PutUint64(dst[lastAt+8:], s)
				continue
			}
			if n < MaxAckRanges*AckRangeSize {
				// Another range in this frame, over its CRC (rewritten by seal).
				dst = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(dst[:len(dst)-TrailerSize], s), s)
				binary.BigEndian.PutUint32(dst[at+4:], uint32(n+AckRangeSize))
				dst = append(dst, 0, 0, 0, 0)
				continue
			}
			sealAckRange(dst, at)
		}
		at = len(dst)
		dst = append(dst, Magic0, Magic1, Version, byte(TypeAckRange), 0, 0, 0, AckRangeSize, 0, 0, 0, 0, 0, 0, 0, 0)
		dst = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(dst, s), s)
		dst = append(dst, 0, 0, 0, 0)
		frames++
	}
	if at >= 0 {
		sealAckRange(dst, at)
	}
	return dst, at, frames
}

// sealAckRange writes the CRC of the ACK_RANGE frame at dst[at:], which ends dst.
func sealAckRange(dst []byte, at int) {
	end := len(dst) - TrailerSize
	binary.BigEndian.PutUint32(dst[end:], crc32.Update(0, castagnoli(), dst[at+2:end]))
}
