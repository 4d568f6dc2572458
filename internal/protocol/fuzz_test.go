package protocol

import (
	"bytes"
	"testing"
)

// fuzzLimit is the payload limit FuzzDecode decodes with: small enough that the
// fuzzer reaches frame_too_large and frames at the limit.
const fuzzLimit = 512

// FuzzDecode feeds arbitrary bytes through the stream decoder (the reused-buffer read
// loop of decode_test.go) and checks that:
//   - Decode never panics and never consumes more than it was given (streamDecoder
//     checks n on every call) nor returns n > 0 with an error;
//   - the frames decoded re-encode with AppendFrame to exactly the bytes consumed;
//   - any error is a *DecodeError with a decode code;
//   - the input split at a fuzzer-chosen point, or fed one byte at a time, gives the
//     same frames, the same byte count and the same error as the whole input at once.
//
// Seeds: the golden frames (valid and invalid), a stream of all of them, and the
// files in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	var stream []byte
	for _, g := range goldenFrames {
		b := g.encode()
		f.Add(b, uint(len(b)/2))
		stream = append(stream, b...)
	}
	f.Add(stream, uint(37))
	for _, v := range invalidFrames {
		f.Add(v.bytes(), uint(3))
	}
	f.Add(AppendFrame(nil, TypeReport, 1, make([]byte, fuzzLimit)), uint(HeaderSize))

	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		whole := decodeAllAtOnce(t, data, fuzzLimit)

		if whole.consumed > len(data) {
			t.Fatalf("consumed %d of %d bytes", whole.consumed, len(data))
		}
		var again []byte
		for _, fr := range whole.frames {
			if !fr.Type.Valid() || len(fr.Payload) > fuzzLimit {
				t.Fatalf("decoded an impossible frame %v", fr)
			}
			again = AppendFrame(again, fr.Type, fr.Seq, fr.Payload)
		}
		if !bytes.Equal(again, data[:whole.consumed]) {
			t.Fatalf("frames re-encode to\n% x\nconsumed bytes were\n% x", again, data[:whole.consumed])
		}
		switch errCode(t, whole.err) {
		case "", CodeBadMagic, CodeUnsupportedVersion, CodeUnknownType, CodeFrameTooLarge, CodeBadCRC:
		default:
			t.Fatalf("unexpected error code: %v", whole.err)
		}
		if whole.err == nil && whole.rest != len(data)-whole.consumed {
			t.Fatalf("%d bytes buffered, %d unconsumed", whole.rest, len(data)-whole.consumed)
		}

		// The same bytes in two reads, cut where the fuzzer says.
		cut := 0
		if len(data) > 0 {
			cut = int(split % uint(len(data)+1))
		}
		s := newStreamDecoder(t, fuzzLimit)
		s.feed(data[:cut])
		s.feed(data[cut:])
		sameResult(t, "split in two", s.result(), whole)

		if len(data) <= 4096 {
			sameResult(t, "byte by byte", decodeByteByByte(t, data, fuzzLimit), whole)
		}
	})
}
