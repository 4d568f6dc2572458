package protocol

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ackedBy decodes every frame of b, which must all be ACK_RANGE frames with valid
// payloads, and returns the seqs they cover, in order, with repeats.
func ackedBy(t testing.TB, b []byte) (seqs []uint64, frames int) {
	t.Helper()
	for len(b) > 0 {
		f, n, err := Decode(b, MaxServerPayload)
		if err != nil || n == 0 {
			t.Fatalf("Decode = (%d, %v) with %d bytes left", n, err, len(b))
		}
		if f.Type != TypeAckRange || f.Seq != 0 {
			t.Fatalf("frame %s seq %d, want ACK_RANGE seq 0", f.Type, f.Seq)
		}
		r, err := ParseAckRanges(f.Payload)
		if err != nil {
			t.Fatalf("ParseAckRanges of an encoded frame: %v", err)
		}
		for i := range r.Len() {
			first, last := r.At(i)
			for s := first; ; s++ {
				seqs = append(seqs, s)
				if s == last {
					break
				}
			}
		}
		b = b[n:]
		frames++
	}
	return seqs, frames
}

// The encoder covers exactly the seqs it is given, never one in a gap between them,
// however the seqs come (runs, gaps, repeats, out of order, across calls).
func TestAppendAckRangesCoversExactlyTheSeqs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		var want []uint64
		var out []byte
		at := -1
		base := 1 + rng.Uint64N(1<<40)
		if round%10 == 0 {
			base = math.MaxUint64 - 50 // ranges ending at 2^64-1
		}
		for range 1 + rng.IntN(5) {
			var seqs []uint64
			for range rng.IntN(700) {
				switch rng.IntN(10) {
				case 0:
					if base < math.MaxUint64-4 {
						base += uint64(2 + rng.IntN(3)) // a gap: a NACKed or unread seq
					}
				case 1:
					base -= min(base-1, uint64(rng.IntN(4))) // out of order, or a repeat; never 0, the marker
				default:
					if base < math.MaxUint64 {
						base++
					}
				}
				seqs = append(seqs, base)
			}
			want = append(want, seqs...)
			if rng.IntN(3) == 0 { // another frame in between: no extension across it
				out = AppendFrame(out, TypePong, 1, nil)
				want = append(want, 0) // marker, dropped below
			}
			out, at, _ = AppendAckRanges(out, at, seqs)
		}
		var got []uint64
		for len(out) > 0 {
			f, n, err := Decode(out, MaxServerPayload)
			if err != nil || n == 0 {
				t.Fatalf("round %d: Decode = (%d, %v)", round, n, err)
			}
			if f.Type == TypeAckRange {
				s, _ := ackedBy(t, out[:n])
				got = append(got, s...)
			}
			out = out[n:]
		}
		want = slices.DeleteFunc(want, func(s uint64) bool { return s == 0 })
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: the frames cover %d seqs, want the %d given in order", round, len(got), len(want))
		}
	}
}

func TestAppendAckRangesCoalesces(t *testing.T) {
	// Consecutive seqs over several calls: one frame, one range.
	var b []byte
	at, frames := -1, 0
	for s := uint64(100); s < 100+3*1024; s += 1024 {
		seqs := make([]uint64, 1024)
		for i := range seqs {
			seqs[i] = s + uint64(i)
		}
		var n int
		b, at, n = AppendAckRanges(b, at, seqs)
		frames += n
	}
	if frames != 1 || len(b) != FrameSize(AckRangeSize) {
		t.Fatalf("3072 consecutive seqs: %d frames, %d bytes; want 1 frame of %d", frames, len(b), FrameSize(AckRangeSize))
	}
	// A range holds at most MaxAckRangeSpan seqs, a frame at most MaxAckRanges ranges.
	seqs := make([]uint64, MaxAckRangeSpan+1)
	for i := range seqs {
		seqs[i] = uint64(i)
	}
	b, _, _ = AppendAckRanges(nil, -1, seqs)
	if _, frames := ackedBy(t, b); frames != 1 || len(b) != FrameSize(2*AckRangeSize) {
		t.Fatalf("%d consecutive seqs: %d frames of %d bytes; want 1 frame of 2 ranges", len(seqs), frames, len(b))
	}
	seqs = seqs[:0]
	for i := range MaxAckRanges + 1 {
		seqs = append(seqs, uint64(2*i))
	}
	b, _, frames = AppendAckRanges(nil, -1, seqs)
	if got, n := ackedBy(t, b); n != 2 || frames != 2 || !slices.Equal(got, seqs) {
		t.Fatalf("%d seqs with gaps: %d frames (said %d); want 2", len(seqs), n, frames)
	}
}

// An offset that names no ACK_RANGE frame ending dst (stale, or past its end)
// starts a new frame instead of writing into other bytes.
func TestAppendAckRangesStaleOffset(t *testing.T) {
	pong := AppendFrame(nil, TypePong, 1, nil)
	for _, at := range []int{0, 3, len(pong), len(pong) + 5} {
		b, got, frames := AppendAckRanges(append([]byte(nil), pong...), at, []uint64{7})
		if frames != 1 || got != len(pong) || !bytes.Equal(b[:len(pong)], pong) {
			t.Fatalf("at %d: %d frames, new frame at %d, PONG intact %v", at, frames, got, bytes.Equal(b[:len(pong)], pong))
		}
	}
}

func TestParseAckRangesRefuses(t *testing.T) {
	for _, p := range [][]byte{
		nil,
		make([]byte, 15),
		make([]byte, 17),
		make([]byte, MaxServerPayload+AckRangeSize),
		ackRangePayload(5, 4),
		ackRangePayload(1, 1, 0, MaxAckRangeSpan),
		ackRangePayload(0, math.MaxUint64),
	} {
		if _, err := ParseAckRanges(p); errCode(t, err) != CodeBadPayload {
			t.Errorf("ParseAckRanges(% x) = %v, want bad_payload", p, err)
		}
	}
	r, err := ParseAckRanges(ackRangePayload(0, MaxAckRangeSpan-1, math.MaxUint64, math.MaxUint64))
	if err != nil || r.Len() != 2 {
		t.Fatalf("ParseAckRanges of the widest and the last range = %v, %v", r, err)
	}
}

// FuzzAckRanges: any payload ParseAckRanges accepts covers seqs that the encoder
// puts back into ranges covering exactly them; anything else is bad_payload.
func FuzzAckRanges(f *testing.F) {
	f.Add(ackRangePayload(40, 47, 49, 49))
	f.Add(ackRangePayload(math.MaxUint64-2, math.MaxUint64, 0, 0))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := ParseAckRanges(p)
		if err != nil {
			if errCode(t, err) != CodeBadPayload {
				t.Fatalf("error %v, want bad_payload", err)
			}
			return
		}
		var seqs []uint64
		for i := range r.Len() {
			first, last := r.At(i)
			if last < first || last-first >= MaxAckRangeSpan {
				t.Fatalf("accepted range %d..%d", first, last)
			}
			for s := first; len(seqs) < 1<<20; s++ {
				seqs = append(seqs, s)
				if s == last {
					break
				}
			}
		}
		b, _, _ := AppendAckRanges(nil, -1, seqs)
		if got, _ := ackedBy(t, b); !slices.Equal(got, seqs) {
			t.Fatalf("re-encoded ranges cover %d seqs, want %d", len(got), len(seqs))
		}
	})
}

// The server's steady path: a read's worth of consecutive seqs acknowledged into
// the pending output. 0 allocations.
func BenchmarkAppendAckRanges(b *testing.B) {
	seqs := make([]uint64, 32)
	out := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	next := uint64(1)
	for b.Loop() {
		for i := range seqs {
			seqs[i] = next
			next++
		}
		out, _, _ = AppendAckRanges(out[:0], -1, seqs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(seqs)), "ns/report")
}

// One ACK frame per report, the mode agents that do not ask for ranges keep.
func BenchmarkAppendAcks(b *testing.B) {
	out := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	next := uint64(1)
	for b.Loop() {
		out = out[:0]
		for range 32 {
			out = AppendFrame(out, TypeAck, next, nil)
			next++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*32), "ns/report")
}

func TestAckRangesPayloadBigEndian(t *testing.T) {
	b, _, _ := AppendAckRanges(nil, -1, []uint64{0x0102030405060708})
	if got := binary.BigEndian.Uint64(b[HeaderSize:]); got != 0x0102030405060708 {
		t.Fatalf("first = %#x", got)
	}
}
